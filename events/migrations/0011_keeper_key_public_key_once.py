# A keeper's public key is registered once, ever: under two keeper ids one private key
# would make a quorum alone, and a key rotated out must not come back. Partial (every row
# has a key) so that SQLite adds an index instead of rebuilding keeper_keys, which the
# halt's triggers name.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0010_settled_entries_index"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="keeperkey",
            constraint=models.UniqueConstraint(
                condition=models.Q(("public_key__isnull", False)),
                fields=("public_key",),
                name="keeper_key_public_key_once",
            ),
        ),
    ]
