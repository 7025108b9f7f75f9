# A keeper's public key is registered once, ever: under two keeper ids one private key
# would make a quorum alone, and a key rotated out must not come back.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0010_settled_entries_index"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="keeperkey",
            constraint=models.UniqueConstraint(
                fields=("public_key",), name="keeper_key_public_key_once"
            ),
        ),
    ]
