"""Django's user pages, with two things added.

- A rename is held to the rule its creation form keeps: one username whatever its case
  ("IVAN" beside "ivan"; the database's index on UPPER(username) holds it for every path, and
  would answer the rename with a server error).
- Every change is an event, in the same transaction: who made whom a keeper or a superuser,
  who added, deactivated or deleted an account, who set a password (`user.created`,
  `user.changed`, `user.password_set`, `user.deleted`; conclave.services).
"""

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from conclave.admin_site import actor_of
from conclave.exceptions import Conflict, checked_again_if_refused
from conclave.services import (
    user_changed_record,
    user_created_record,
    user_deleted_record,
    user_password_set_record,
)
from orders.services.mechanics import username_free_check

# A name or address changed is recorded as changed, its value kept out of the public log.
PERSONAL_FIELDS = frozenset({"first_name", "last_name", "email"})


class UserRenameForm(UserChangeForm):
    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        try:
            username_free_check(username, user=self.instance)
        except Conflict:  # told in Django's words, as its creation form tells it
            raise ValidationError(self.instance.unique_error_message(User, ["username"])) from None
        return username


def _granted(user: User, name: str) -> set[str]:
    """The names of the groups or permissions (app_label.codename) `user` holds."""
    if name == "groups":
        return set(user.groups.values_list("name", flat=True))
    return {
        f"{app_label}.{codename}"
        for app_label, codename in user.user_permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def _seconds(value: Any) -> Any:
    """A time as the page's field shows it: to the second (a save without a change of it
    drops the microseconds Django's default put there, which is no change to record)."""
    return value.replace(microsecond=0) if isinstance(value, datetime) else value


def _logged(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


admin.site.unregister(User)


@admin.register(User)
class ConclaveUserAdmin(UserAdmin):
    form = UserRenameForm

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # A name taken since the form's check: the index refuses the save, and the check run
        # again says why (the admin's refusal page, RefusalMiddleware), not a 500.
        with checked_again_if_refused(lambda: username_free_check(obj.username, user=obj)):
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The groups and permissions are saved here, after the user: the event is taken
        once they are (changeform_view's transaction holds both)."""
        user, actor = form.instance, actor_of(request)
        related = [name for name in ("groups", "user_permissions") if name in form.changed_data]
        held = {name: _granted(user, name) for name in related}
        super().save_related(request, form, formsets, change)
        if not change:
            user_created_record(user=user, actor=actor)
            return
        changes: dict[str, Any] = {}
        for name in form.changed_data:
            if name in held:
                now = _granted(user, name)
                changes[name] = {
                    "added": sorted(now - held[name]), "removed": sorted(held[name] - now)
                }  # fmt: skip
            elif name not in PERSONAL_FIELDS and name != "password":
                old, new = form.initial.get(name), form.cleaned_data.get(name)
                if _seconds(old) != _seconds(new):
                    changes[name] = {"old": _logged(old), "new": _logged(new)}
        personal = [name for name in form.changed_data if name in PERSONAL_FIELDS]
        user_changed_record(user=user, actor=actor, changes=changes, personal_fields=personal)

    @transaction.atomic
    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # the form saved it
            user = User.objects.get(pk=unquote(id))
            user_password_set_record(user=user, actor=actor_of(request))
        return response

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        with transaction.atomic():
            user_deleted_record(user=obj, actor=actor_of(request))
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for user in queryset:
                user_deleted_record(user=user, actor=actor_of(request))
            super().delete_queryset(request, queryset)
