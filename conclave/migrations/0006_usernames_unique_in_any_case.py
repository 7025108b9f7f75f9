"""One username whatever its case: "Ivan" beside "ivan" passes for the same person. Django's
own user form and the mechanics' service check it case-insensitively; this index makes it hold
for every path that writes a user (`createsuperuser`, the admin, two creations at once)."""

from django.core.management.base import CommandError
from django.db import migrations
from django.db.models import Count
from django.db.models.functions import Upper


def refuse_names_differing_only_in_case(apps, schema_editor) -> None:
    """The index cannot be built over two such names, and which one to rename is the
    operator's call: name every group and stop."""
    users = apps.get_model("auth", "User").objects.using(schema_editor.connection.alias)
    users = users.annotate(name=Upper("username"))
    shared = users.values("name").annotate(count=Count("id")).filter(count__gt=1)
    groups: dict[str, list[str]] = {}
    for name, username in users.filter(name__in=shared.values("name")).values_list(
        "name", "username"
    ):
        groups.setdefault(name, []).append(username)
    if groups:
        listed = "; ".join(", ".join(sorted(group)) for _, group in sorted(groups.items()))
        raise CommandError(
            f"Usernames differing only in case: {listed}. Rename all but one of each group"
            " (Django's admin, or manage.py shell), then migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("conclave", "0005_idempotency_keys"),
    ]

    operations = [
        migrations.RunPython(refuse_names_differing_only_in_case, migrations.RunPython.noop),
        migrations.RunSQL(
            "CREATE UNIQUE INDEX auth_user_username_upper_uniq ON auth_user (UPPER(username))",
            "DROP INDEX auth_user_username_upper_uniq",
        ),
    ]
