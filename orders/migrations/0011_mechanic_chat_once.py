# A Telegram chat belongs to one mechanic: the bot finds the mechanic by it.

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0010_runbook_index_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="mechanicprofile",
            constraint=models.UniqueConstraint(
                condition=models.Q(("telegram_chat_id__isnull", False)),
                fields=("telegram_chat_id",),
                name="mechanic_chat_once",
            ),
        ),
    ]
