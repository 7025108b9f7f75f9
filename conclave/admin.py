"""Django's user pages, a rename held to the rule its creation form keeps: one username
whatever its case ("IVAN" beside "ivan"; the database's index on UPPER(username) holds it for
every path, and would answer the rename with a server error)."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from conclave.exceptions import checked_again_if_refused
from orders.services.mechanics import username_free_check


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

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # A name taken since the form's check: the index refuses the save, and the check run
        # again says why (the admin's refusal page, RefusalMiddleware), not a 500.
        with checked_again_if_refused(lambda: username_free_check(obj.username, user=obj)):
            super().save_model(request, obj, form, change)
