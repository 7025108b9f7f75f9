"""Django's `createsuperuser` (SPEC section 2: `--noinput` with `DJANGO_SUPERUSER_*`, or
asked for at the terminal), with two of the product's rules for a user kept:

- one username whatever its case: "Admin" beside "admin" is refused as taken, as the admin's
  pages refuse it (Django's own check matches exactly, and the database's index on
  UPPER(username) would end the command in a traceback);
- the account is in the log: the user and its `user.created` event are written in one
  transaction, and neither while the system is halted.
"""

from typing import Any, cast

from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError
from django.db import transaction

from conclave.exceptions import Conflict, DomainError, checked_again_if_refused
from conclave.halt import ensure_not_halted
from conclave.services import user_created_record
from orders.services.mechanics import username_free_check

ACTOR = "manage.py createsuperuser"


class Command(createsuperuser.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.UserModel = cast(Any, _RecordedUsers(self.UserModel))

    def _validate_username(self, username: str, verbose_field_name: str, database: str) -> Any:
        # Django's check of every name given, typed or --username (not in its type stubs).
        error = super()._validate_username(username, verbose_field_name, database)  # type: ignore[misc]
        if error is None:
            try:
                username_free_check(username)
            except Conflict as taken:  # asked again at the terminal; with --noinput, the end
                return f"Error: {taken.detail}"
        return error

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ensure_not_halted()  # said before the questions (and checked again as it writes)
            super().handle(*args, **options)
        except DomainError as refused:  # halted, or the name taken since it was checked
            raise CommandError(f"{refused.error}: {refused.detail}") from refused


class _RecordedUsers:
    """The user model as Django's command reads it, but for its manager's create_superuser.
    (The command asks its questions before it writes: a transaction around the whole
    command would be held open while someone types, SQLite's write lock with it.)"""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    @property
    def _default_manager(self) -> "_RecordedManager":
        return _RecordedManager(self.model._default_manager)


class _RecordedManager:
    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def __getattr__(self, name: str) -> Any:
        return getattr(self.manager, name)

    def db_manager(self, using: str) -> "_RecordedManager":
        return _RecordedManager(self.manager.db_manager(using))

    def create_superuser(self, **fields: Any) -> Any:
        username = fields[self.manager.model.USERNAME_FIELD]
        with (
            transaction.atomic(using=self.manager.db),
            checked_again_if_refused(lambda: username_free_check(username)),
        ):
            user = self.manager.create_superuser(**fields)
            user_created_record(user=user, actor=ACTOR)
        return user
