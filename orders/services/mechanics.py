"""Mechanics: accounts, their profile and password."""

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext
from rest_framework.authtoken.models import Token

from conclave.exceptions import Conflict, ValidationFailed, checked_again_if_refused
from events.services import event_append
from orders.models import Language, MechanicProfile
from orders.services.common import actor_of
from orders.services.login_links import login_links_revoke
from orders.services.time import timers_stop_running
from orders.validators import printable


def _display_name(value: str) -> str:
    """A display name as people read it: trimmed, 1 to 100 characters, nothing that hides or
    turns text."""
    value = value.strip()
    if not value or len(value) > 100:
        raise ValidationFailed({"display_name": ["1 to 100 characters."]})
    printable(value, "display_name")
    return value


def username_free_check(username: str, *, user: User | None = None) -> None:
    """Conflict if a user other than `user` has the name in any case: names differing only
    in case are one name to the people reading them (as Django's own user creation form has
    it, and the database's index on UPPER(username)): "Staff" beside "staff" would pass."""
    users = get_user_model().objects.all()
    if user is not None:
        users = users.exclude(pk=user.pk)
    taken = users.filter(username__iexact=username).first()
    if taken is not None:
        raise Conflict(f"A user named {taken.username} exists already.")


def mechanic_create_check(
    *,
    username: str,
    password: str,
    telegram_chat_id: int | None,
    language: str,
    display_name: str = "",
) -> None:
    """What mechanic_create refuses (ValidationFailed, or Conflict for a name or chat taken),
    for a form to show on its fields before it saves."""
    user_model = get_user_model()
    if not username or len(username) > 150:
        raise ValidationFailed({"username": ["1 to 150 characters."]})
    try:  # Django's rule for a username: letters, digits and @ . + - _ (no spaces, no controls)
        user_model.username_validator(username)
    except ValidationError as exc:
        raise ValidationFailed({"username": list(exc.messages)}) from exc
    username_free_check(username)
    if display_name.strip():
        _display_name(display_name)
    if language not in Language.values:
        raise ValidationFailed({"language": [f"One of {', '.join(Language.values)}."]})
    if telegram_chat_id is not None:
        _check_chat(telegram_chat_id)
    try:
        validate_password(password, user_model(username=username))
    except ValidationError as exc:
        raise ValidationFailed({"password": list(exc.messages)}) from exc


@transaction.atomic
def mechanic_create(
    *,
    username: str,
    password: str,
    display_name: str = "",
    telegram_chat_id: int | None = None,
    language: str = Language.ENGLISH,
    actor: str = "system",
) -> MechanicProfile:
    def check() -> None:
        mechanic_create_check(
            username=username,
            password=password,
            telegram_chat_id=telegram_chat_id,
            language=language,
            display_name=display_name,
        )

    check()
    # The name (in any case: conclave's index on UPPER(username)) or the chat taken meanwhile
    with checked_again_if_refused(check):
        user = get_user_model()(username=username)
        user.set_password(password)
        user.save()
        profile = MechanicProfile.objects.create(
            user=user,
            display_name=_display_name(display_name) if display_name.strip() else username[:100],
            telegram_chat_id=telegram_chat_id,
            language=language,
        )
    payload: dict[str, Any] = {
        "mechanic_id": profile.pk,
        "username": username,
        "language": language,
        "actor": actor,
    }
    event_append(event_type="mechanic.created", payload=payload)
    return profile


PHONE_PATTERN = re.compile(r"\+?[0-9][0-9 ()-]{4,30}")


@transaction.atomic
def mechanic_update(
    *,
    mechanic: MechanicProfile,
    phone: str | None = None,
    language: str | None = None,
    display_name: str | None = None,
) -> MechanicProfile:
    """The mechanic's own profile: phone, language, display name (only the fields given)."""
    changes: dict[str, Any] = {}
    if phone is not None:
        phone = phone.strip()
        if phone and not PHONE_PATTERN.fullmatch(phone):
            raise ValidationFailed(
                {"phone": [gettext("Digits, spaces, ( ) and -, optionally after +.")]}
            )
        changes["phone"] = phone
    if language is not None:
        if language not in Language.values:
            raise ValidationFailed({"language": [f"One of {', '.join(Language.values)}."]})
        changes["language"] = language
    if display_name is not None:
        changes["display_name"] = _display_name(display_name)
    changes = {k: v for k, v in changes.items() if getattr(mechanic, k) != v}
    if not changes:
        return mechanic
    for field, value in changes.items():
        setattr(mechanic, field, value)
    mechanic.save(update_fields=list(changes))
    event_append(
        event_type="mechanic.profile_changed",
        payload={
            "mechanic_id": mechanic.pk,
            "fields": sorted(changes),
            "actor": f"mechanic:{mechanic.pk}",
        },
    )
    return mechanic


@transaction.atomic
def mechanic_password_change(*, user: User, current_password: str, new_password: str) -> None:
    """Needs the current password; the new one passes Django's validators. Every API token
    of the user is revoked, so a token taken before the change stops working."""
    if not user.check_password(current_password):
        raise ValidationFailed(
            {"current_password": [gettext("This is not your current password.")]}
        )
    if new_password == current_password:
        raise ValidationFailed(
            {"new_password": [gettext("Choose a password you have not been using.")]}
        )
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationFailed({"new_password": list(exc.messages)}) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])
    Token.objects.filter(user=user).delete()
    login_links_revoke(user_id=user.pk)
    event_append(
        event_type="mechanic.password_changed",
        payload={"username": user.get_username(), "actor": actor_of(user)},
    )


@transaction.atomic
def mechanic_password_reset(*, mechanic: MechanicProfile, new_password: str, actor: User) -> None:
    """Staff set a new password (the mechanic forgot theirs): Django's validators apply, the
    mechanic's API tokens are revoked and their sessions end."""
    user = mechanic.user
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationFailed({"new_password": list(exc.messages)}) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])  # the session hash changes: sessions end
    Token.objects.filter(user=user).delete()
    login_links_revoke(user_id=user.pk)
    event_append(
        event_type="mechanic.password_reset",
        payload={"mechanic_id": mechanic.pk, "actor": actor_of(actor)},
    )


@transaction.atomic
def mechanic_set_active(*, mechanic: MechanicProfile, active: bool, actor: User) -> MechanicProfile:
    """Deactivating a mechanic signs them out everywhere (tokens revoked, user inactive) and
    stops their running timer; their orders stay. Reactivating lets them sign in again."""
    if mechanic.is_active == active:
        return mechanic
    mechanic.is_active = active
    mechanic.save(update_fields=["is_active"])
    user = mechanic.user
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        Token.objects.filter(user=user).delete()
        login_links_revoke(user_id=user.pk)
    event_append(
        event_type="mechanic.activated" if active else "mechanic.deactivated",
        payload={"mechanic_id": mechanic.pk, "actor": actor_of(actor)},
    )
    if not active:
        timers_stop_running(
            mechanic.time_entries.all(), actor=actor_of(actor), reason="mechanic_deactivated"
        )
    return mechanic


def _check_chat(chat_id: int, *, mechanic: MechanicProfile | None = None) -> None:
    """A private chat's id (Telegram's are positive and under 2**52) that no mechanic but
    `mechanic` has: a chat belongs to one mechanic."""
    if not isinstance(chat_id, int) or not 0 < chat_id < 2**52:
        raise ValidationFailed({"telegram_chat_id": ["A private chat's positive id."]})
    taken = MechanicProfile.objects.filter(telegram_chat_id=chat_id)
    if mechanic is not None:
        taken = taken.exclude(pk=mechanic.pk)
    if taken.exists():
        raise Conflict(f"Chat {chat_id} is linked to another mechanic already.")


@transaction.atomic
def mechanic_telegram_link(
    *, mechanic: MechanicProfile, chat_id: int | None, actor: User
) -> MechanicProfile:
    """Links the mechanic's Telegram chat (the bot and their notifications use it), or unlinks
    it with None. A chat belongs to one mechanic."""

    def check() -> None:
        if chat_id is not None:
            _check_chat(chat_id, mechanic=mechanic)

    check()
    if mechanic.telegram_chat_id == chat_id:
        return mechanic
    mechanic.telegram_chat_id = chat_id
    with checked_again_if_refused(check):  # linked to another mechanic meanwhile
        mechanic.save(update_fields=["telegram_chat_id"])
    login_links_revoke(user_id=mechanic.user_id)  # those sent to the chat it had
    event_append(
        event_type="mechanic.telegram_linked" if chat_id else "mechanic.telegram_unlinked",
        payload={"mechanic_id": mechanic.pk, "actor": actor_of(actor)},
    )
    return mechanic
