# The purge index without pending rows: an append no longer adds a NULL key to it.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0009_event_type_index"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="eventqueueentry",
            name="event_queue_processed_at",
        ),
        migrations.AddIndex(
            model_name="eventqueueentry",
            index=models.Index(
                condition=models.Q(("processed_at__isnull", False)),
                fields=["processed_at"],
                name="event_queue_processed_at",
            ),
        ),
    ]
