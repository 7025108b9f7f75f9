"""Django's createsuperuser and changepassword with the product's rules for a user: one
username whatever its case, and every account and password set in the log (SPEC section 2:
`--noinput` with `DJANGO_SUPERUSER_*`)."""

import builtins
import getpass
import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from conclave.halt import forget_halt_status
from conclave.services import halt_raise
from events.models import Event

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-password-7"


@pytest.fixture
def superuser_env(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@workshop.example")


def created(username: str) -> str:
    out = io.StringIO()
    call_command("createsuperuser", "--noinput", "--username", username, stdout=out)
    return out.getvalue()


def test_createsuperuser__the_account_and_its_event_in_the_log(system_keys, superuser_env):
    before = Event.objects.count()

    said = created("root")

    root = User.objects.get(username="root")
    assert said == "Superuser created successfully.\n"
    assert (root.is_superuser, root.is_staff, root.check_password(PASSWORD)) == (True, True, True)
    [event] = Event.objects.filter(sequence__gt=before)
    assert (event.event_type, event.payload) == ("user.created", {
        "user_id": root.pk, "username": "root", "actor": "manage.py createsuperuser",
        "password": "set", "is_staff": True, "is_superuser": True,
    })  # fmt: skip


@pytest.mark.parametrize("username", ["ROOT", "Root"])
def test_createsuperuser__a_name_taken_in_another_case__refused_in_words(
    system_keys, superuser_env, username
):
    """Not the database index's IntegrityError traceback: the name that has it."""
    created("root")
    before = Event.objects.count()

    with pytest.raises(CommandError, match=r"^Error: A user named root exists already\.$"):
        created(username)

    assert list(User.objects.values_list("username", flat=True)) == ["root"]
    assert Event.objects.count() == before


def test_createsuperuser__halted__refused_nothing_written(system_keys, superuser_env):
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()
    before = Event.objects.count()

    with pytest.raises(CommandError, match="^halted: The system is halted"):
        created("root")

    assert not User.objects.exists()
    assert Event.objects.count() == before


class Terminal:
    """Someone at the terminal: types `answers` in turn to the command's questions and
    PASSWORD to each password prompt; with `halt_at`, a halt is raised as the question
    starting so is answered. Records each question and how many transactions were open
    as it was asked."""

    def __init__(self, monkeypatch, answers: list[str], *, halt_at: str | None = None) -> None:
        self.answers = iter(answers)
        self.halt_at = halt_at
        self.asked: list[str] = []
        self.open_transactions: list[int] = []
        self.stdin = io.StringIO()
        self.stdin.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr(builtins, "input", lambda prompt="": self.typed(prompt))
        monkeypatch.setattr(
            getpass, "getpass", lambda prompt="Password: ": self.typed(prompt, PASSWORD)
        )

    def typed(self, prompt: str, answer: str | None = None) -> str:
        self.asked.append(prompt)
        self.open_transactions.append(len(connection.atomic_blocks))
        if self.halt_at and prompt.startswith(self.halt_at):
            halt_raise(reason="drill", actor="test", channel="command")
            forget_halt_status()
        return next(self.answers) if answer is None else answer


def test_createsuperuser__halted_while_it_asked__refused_nothing_written(system_keys, monkeypatch):
    """The halt checked before the questions is checked again as the user is written."""
    terminal = Terminal(monkeypatch, ["boss", "boss@workshop.example"], halt_at="Email")

    with pytest.raises(CommandError, match="^halted: The system is halted"):
        call_command("createsuperuser", stdin=terminal.stdin, stdout=io.StringIO())

    assert not User.objects.exists()
    assert not Event.objects.filter(event_type__startswith="user.").exists()


def test_createsuperuser__halted__said_before_anything_is_asked(system_keys, monkeypatch):
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()
    terminal = Terminal(monkeypatch, ["boss", "boss@workshop.example"])

    with pytest.raises(CommandError, match="^halted: The system is halted"):
        call_command("createsuperuser", stdin=terminal.stdin, stdout=io.StringIO())

    assert terminal.asked == []


def test_createsuperuser__asked_at_the_terminal__a_name_taken_in_another_case_asked_again(
    system_keys, monkeypatch
):
    """At the terminal the command asks again, as Django's does for a name taken exactly;
    no transaction is open while it asks (SQLite's would hold the write lock)."""
    User.objects.create_user("root")
    terminal = Terminal(monkeypatch, ["ROOT", "boss", "boss@workshop.example"])
    err = io.StringIO()
    test_s_own = len(connection.atomic_blocks)  # the test's transaction

    call_command("createsuperuser", stdin=terminal.stdin, stdout=io.StringIO(), stderr=err)

    assert err.getvalue() == "Error: A user named root exists already.\n"
    assert [prompt.split(":")[0] for prompt in terminal.asked] == [
        "Username", "Username", "Email address", "Password", "Password (again)",
    ]  # fmt: skip
    assert set(terminal.open_transactions) == {test_s_own}
    assert sorted(User.objects.values_list("username", flat=True)) == ["boss", "root"]
    assert Event.objects.get(event_type="user.created").payload["username"] == "boss"


# --- changepassword -------------------------------------------------------------------------------


def password_changed(monkeypatch, username: str, *typed: str) -> tuple[str, str]:
    """Runs changepassword for `username` with `typed` as the answers to its questions; its
    output and its error output."""
    answers = iter(typed)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="Password: ": next(answers))
    out, err = io.StringIO(), io.StringIO()
    call_command("changepassword", username, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_changepassword__the_password_and_its_event_in_the_log(system_keys, monkeypatch):
    kim = User.objects.create_user("kim", password="an-old-password-of-kim")
    before = Event.objects.count()

    out, err = password_changed(monkeypatch, "kim", "short", "short", "x", "y", PASSWORD, PASSWORD)

    kim.refresh_from_db()
    assert kim.check_password(PASSWORD)
    assert out == (
        "Changing password for user 'kim'\n"
        "Passwords do not match. Please try again.\n"
        "Password changed successfully for user 'kim'\n"
    )
    assert "This password is too short." in err
    [event] = Event.objects.filter(sequence__gt=before)
    assert (event.event_type, event.payload) == ("user.password_set", {
        "user_id": kim.pk, "username": "kim", "actor": "manage.py changepassword",
        "password": "set",
    })  # fmt: skip


def test_changepassword__three_tries_refused__nothing_changed(system_keys, monkeypatch):
    kim = User.objects.create_user("kim", password="an-old-password-of-kim")
    before = Event.objects.count()

    with pytest.raises(CommandError, match="Aborting password change for user 'kim' after 3"):
        password_changed(monkeypatch, "kim", "a", "b", "c", "d", "e", "f")

    kim.refresh_from_db()
    assert kim.check_password("an-old-password-of-kim")
    assert Event.objects.count() == before


def test_changepassword__halted__refused_nothing_changed(system_keys, monkeypatch):
    kim = User.objects.create_user("kim", password="an-old-password-of-kim")
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()
    before = Event.objects.count()

    with pytest.raises(CommandError, match="^halted: The system is halted"):
        password_changed(monkeypatch, "kim")  # refused before it asks

    kim.refresh_from_db()
    assert kim.check_password("an-old-password-of-kim")
    assert Event.objects.count() == before


def test_changepassword__no_such_user__refused_in_words(system_keys, monkeypatch):
    with pytest.raises(CommandError, match="^user 'nobody' does not exist$"):
        password_changed(monkeypatch, "nobody")


def test_changepassword__halted_while_it_asked__refused_nothing_changed(system_keys, monkeypatch):
    kim = User.objects.create_user("kim", password="an-old-password-of-kim")
    Terminal(monkeypatch, [], halt_at="Password (again)")

    with pytest.raises(CommandError, match="^halted: The system is halted"):
        call_command("changepassword", "kim", stdout=io.StringIO())

    kim.refresh_from_db()
    assert kim.check_password("an-old-password-of-kim")
    assert not Event.objects.filter(event_type__startswith="user.").exists()
