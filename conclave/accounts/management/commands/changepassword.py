"""Django's `changepassword`, with the password and its `user.password_set` event written in
one transaction (refused while halted), as the admin's password page writes them. It asks as
Django's command asks: twice, checked by the password validators, three tries. (Django's
command saves the user at the end of its handle, after its questions: there is no hook
between them, so this handle is the product's.)"""

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from conclave.exceptions import DomainError
from conclave.halt import ensure_not_halted
from conclave.services import user_password_set_record

ACTOR = "manage.py changepassword"
TRIES = 3


class Command(changepassword.Command):
    def handle(self, *args: Any, **options: Any) -> str:
        try:
            ensure_not_halted()  # said before the questions (and checked again as it writes)
            return self._changed(options["username"] or getpass.getuser(), options["database"])
        except DomainError as refused:  # halted
            raise CommandError(f"{refused.error}: {refused.detail}") from refused

    def _changed(self, username: str, database: str) -> str:
        user = get_user_model()._default_manager.using(database).filter(username=username).first()
        if user is None:
            raise CommandError(f"user '{username}' does not exist")
        self.stdout.write(f"Changing password for user '{user}'")
        password = self._new_password(user)
        with transaction.atomic(using=database):
            user.set_password(password)
            user.save(update_fields=["password"])
            user_password_set_record(user=user, actor=ACTOR)
        return f"Password changed successfully for user '{user}'"

    def _new_password(self, user: Any) -> str:
        ask = self._get_pass  # type: ignore[attr-defined]  # Django's prompt, not in its stubs
        for _ in range(TRIES):
            password = ask()
            if password != ask("Password (again): "):
                self.stdout.write("Passwords do not match. Please try again.")
                continue
            try:
                validate_password(password, user)
            except ValidationError as refused:
                self.stderr.write("\n".join(refused.messages))
                continue
            return password
        raise CommandError(f"Aborting password change for user '{user}' after {TRIES} attempts")
