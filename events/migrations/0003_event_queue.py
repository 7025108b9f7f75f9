"""The queue writers commit events to, and the database rules that keep it honest.

A pending entry can be neither changed nor deleted; an entry only ever gains, once, either
its sequence in the log or a rejection; only finished entries may be purged. TRUNCATE is
refused, so pending events cannot be dropped in bulk either.
"""

import django.db.models.functions.datetime
from django.db import migrations, models

from conclave.migration_ops import vendor_sql

POSTGRES_FORWARD = r"""
CREATE OR REPLACE FUNCTION conclave_protect_event_queue() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.processed_at IS NULL THEN
            RAISE EXCEPTION 'a pending queued event cannot be deleted'
                USING ERRCODE = 'raise_exception';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.id <> OLD.id OR NEW.event_type <> OLD.event_type OR NEW.payload <> OLD.payload
       OR NEW.agent_id <> OLD.agent_id OR NEW.local_timestamp <> OLD.local_timestamp
       OR NEW.enqueued_at <> OLD.enqueued_at OR OLD.processed_at IS NOT NULL
       OR NEW.processed_at IS NULL
       OR (NEW.sequence IS NULL) = (NEW.rejected_reason = '')
    THEN
        RAISE EXCEPTION 'a queued event only gains a sequence or a rejection, once'
            USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER protect_event_queue BEFORE UPDATE OR DELETE ON event_queue
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_event_queue();
CREATE TRIGGER prevent_event_queue_truncate BEFORE TRUNCATE ON event_queue
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();
"""

POSTGRES_REVERSE = r"""
DROP TRIGGER prevent_event_queue_truncate ON event_queue;
DROP TRIGGER protect_event_queue ON event_queue;
DROP FUNCTION conclave_protect_event_queue();
"""

SQLITE_FORWARD = """
CREATE TRIGGER protect_event_queue_delete BEFORE DELETE ON event_queue
WHEN OLD.processed_at IS NULL
BEGIN SELECT RAISE(ABORT, 'a pending queued event cannot be deleted'); END;
CREATE TRIGGER protect_event_queue_update BEFORE UPDATE ON event_queue
WHEN NEW.id <> OLD.id OR NEW.event_type <> OLD.event_type OR NEW.payload <> OLD.payload
  OR NEW.agent_id <> OLD.agent_id OR NEW.local_timestamp <> OLD.local_timestamp
  OR NEW.enqueued_at <> OLD.enqueued_at OR OLD.processed_at IS NOT NULL
  OR NEW.processed_at IS NULL
  OR (NEW.sequence IS NULL) = (NEW.rejected_reason = '')
BEGIN SELECT RAISE(ABORT, 'a queued event only gains a sequence or a rejection, once'); END;
"""

SQLITE_REVERSE = """
DROP TRIGGER protect_event_queue_update;
DROP TRIGGER protect_event_queue_delete;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_append_only_and_chain_triggers"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventQueueEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_type", models.CharField(max_length=100)),
                ("payload", models.TextField()),
                ("agent_id", models.CharField(max_length=200)),
                ("local_timestamp", models.DateTimeField()),
                (
                    "enqueued_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("sequence", models.BigIntegerField(blank=True, null=True)),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
                ("rejected_reason", models.TextField(blank=True, db_default="")),
            ],
            options={
                "db_table": "event_queue",
                "ordering": ["id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("processed_at__isnull", True)),
                        fields=["id"],
                        name="event_queue_pending",
                    ),
                    models.Index(fields=["processed_at"], name="event_queue_processed_at"),
                ],
            },
        ),
        vendor_sql(
            forward={"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD},
            reverse={"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE},
        ),
    ]
