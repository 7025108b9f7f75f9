"""The event type index as a plain b-tree (exact matches only), without the pattern-ops twin
`db_index` made on PostgreSQL, which every event paid for.

Done in SQL: on SQLite Django would alter the field by rebuilding `events`, which would drop
its append-only triggers with the old table.
"""

from django.db import migrations, models

from conclave.migration_ops import vendor_sql

FORWARD = {
    "postgresql": """
        DROP INDEX events_event_type_eeb643cb_like;
        ALTER INDEX events_event_type_eeb643cb RENAME TO idx_events_event_type;
    """,
    "sqlite": """
        DROP INDEX events_event_type_eeb643cb;
        CREATE INDEX idx_events_event_type ON events (event_type);
    """,
}
REVERSE = {
    "postgresql": """
        ALTER INDEX idx_events_event_type RENAME TO events_event_type_eeb643cb;
        CREATE INDEX events_event_type_eeb643cb_like ON events (event_type varchar_pattern_ops);
    """,
    "sqlite": """
        DROP INDEX idx_events_event_type;
        CREATE INDEX events_event_type_eeb643cb ON events (event_type);
    """,
}


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0008_event_queue_autovacuum"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[vendor_sql(forward=FORWARD, reverse=REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="event_type",
                    field=models.CharField(max_length=100),
                ),
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(fields=["event_type"], name="idx_events_event_type"),
                ),
            ],
        ),
    ]
