"""The checkpoint and anchor verification kinds in the migration state (choices only: no
change to the database)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conclave", "0003_verification_of_a_range"),
    ]

    operations = [
        migrations.AlterField(
            model_name="verificationrun",
            name="kind",
            field=models.CharField(
                choices=[
                    ("full", "Full"),
                    ("preoperational", "Preoperational"),
                    ("periodic", "Periodic"),
                    ("range", "Range"),
                    ("checkpoint", "Checkpoint"),
                    ("anchor", "Anchor"),
                ],
                max_length=16,
            ),
        ),
    ]
