"""The staff roles: Django groups holding model permissions. The admin shows a user only what
their groups (or a superuser's every right) allow, and every admin view checks it server-side.

- Staff: orders, catalogue, mechanics, the notification outbox.
- Flag managers: the feature flags (the API's `flags.change_featureflag` too).
- Keepers: the halt ceremony (approve with a keeper signature).
- Security admins: keys (register, rotate; never delete), the halt (raise), the event log.

Nobody gets a delete permission on keys, events, drift warnings or the outbox: the database
refuses those deletes anyway. `sync_roles` runs after every `migrate`.
"""

from typing import Any

STAFF = "Staff"
FLAG_MANAGERS = "Flag managers"
KEEPERS = "Keepers"
SECURITY_ADMINS = "Security admins"

# role -> ("app_label.codename", ...)
ROLES: dict[str, tuple[str, ...]] = {
    STAFF: (
        "orders.view_order",
        "orders.change_order",
        "orders.view_orderitem",
        "orders.view_orderwork",
        "orders.view_comment",
        "orders.view_timeentry",
        "orders.view_orderphoto",
        "orders.view_mechanicprofile",
        "orders.add_mechanicprofile",
        "orders.change_mechanicprofile",
        "orders.view_category",
        "orders.add_category",
        "orders.change_category",
        "orders.delete_category",
        "orders.view_part",
        "orders.add_part",
        "orders.change_part",
        "orders.delete_part",
        "notifications.view_notification",
        "notifications.change_notification",
    ),
    FLAG_MANAGERS: ("flags.view_featureflag", "flags.change_featureflag"),
    KEEPERS: (
        "conclave.view_haltstate",
        "conclave.view_haltceremony",
        "conclave.add_ceremonyapproval",
        "conclave.view_ceremonyapproval",
    ),
    SECURITY_ADMINS: (
        "conclave.view_haltstate",
        "conclave.change_haltstate",
        "conclave.view_haltceremony",
        "conclave.view_ceremonyapproval",
        "conclave.view_verificationrun",
        "events.view_event",
        "events.view_clockdriftwarning",
        "events.view_agentkey",
        "events.add_agentkey",
        "events.change_agentkey",
        "events.view_keeperkey",
        "events.add_keeperkey",
        "events.change_keeperkey",
    ),
}


def sync_roles(**_signal: Any) -> None:
    """Creates the groups and sets exactly their permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:  # a model not migrated yet: the next migrate adds it
                continue
            wanted.append(permission)
        group.permissions.set(wanted)
