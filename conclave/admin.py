"""Django's user pages, a rename held to the rule its creation form keeps: one username
whatever its case ("IVAN" beside "ivan"; the database's index on UPPER(username) holds it for
every path, and would answer the rename with a server error)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError


class UserRenameForm(UserChangeForm):
    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        others = User.objects.exclude(pk=self.instance.pk)
        if others.filter(username__iexact=username).exists():
            raise ValidationError(self.instance.unique_error_message(User, ["username"]))
        return username


admin.site.unregister(User)


@admin.register(User)
class ConclaveUserAdmin(UserAdmin):
    form = UserRenameForm
