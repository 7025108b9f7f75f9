"""One-time sign-in links for mechanics (sent with an assignment)."""

import secrets
from datetime import timedelta

from django.core import signing
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from conclave.exceptions import DomainError
from orders.models import MechanicLoginLink, MechanicProfile, Order

LOGIN_LINK_LIFETIME = timedelta(hours=24)
_SALT = "orders.mechanic-login-link"


class LoginLinkInvalid(DomainError):
    status_code = 403
    error = "login_link_invalid"
    default_detail = "This sign-in link is not valid: it was used already, expired or altered."


def login_link_issue(*, mechanic: MechanicProfile, order: Order) -> str:
    """A token for the mechanic's sign-in link to `order`, valid once for 24 hours."""
    link = MechanicLoginLink.objects.create(
        nonce=secrets.token_hex(16),
        mechanic=mechanic,
        order=order,
        expires_at=timezone.now() + LOGIN_LINK_LIFETIME,
    )
    return signing.dumps(link.nonce, salt=_SALT)


@transaction.atomic
def login_link_redeem(token: str) -> MechanicLoginLink:
    """The link's mechanic and order, once: a second use, an expired, altered or foreign
    token, or an inactive mechanic are refused."""
    try:
        nonce = signing.loads(token, salt=_SALT, max_age=LOGIN_LINK_LIFETIME)
    except signing.BadSignature:
        raise LoginLinkInvalid() from None
    now = timezone.now()
    used = MechanicLoginLink.objects.filter(
        nonce=nonce,
        used_at__isnull=True,
        expires_at__gt=now,
        mechanic__is_active=True,
        order__mechanic=F("mechanic"),  # the order is still theirs: not reassigned since
    ).update(used_at=now)
    if used != 1:
        raise LoginLinkInvalid()
    return MechanicLoginLink.objects.select_related("mechanic__user", "order").get(nonce=nonce)


def login_links_revoke(*, user_id: int) -> None:
    """The mechanic's links not used yet stop working: they sign in without the password, so
    they go with it (changed or reset), with the account (deactivated) and with the chat they
    were sent to (linked to another). Named by their user: one statement whatever the caller
    holds."""
    MechanicLoginLink.objects.filter(mechanic__user_id=user_id, used_at__isnull=True).delete()
