"""Autovacuum keeps the event queue small whatever its size.

Every integrated entry leaves a dead row version and a dead entry in the partial index
`event_queue_pending`, which the integrator scans for pending entries several times a second.
PostgreSQL's default waits for dead rows to reach a fifth of the table; on a queue holding an
hour of entries that is far too late. Here autovacuum takes the queue as soon as 10,000 rows
are dead (or inserted, to keep its visibility map current for index-only scans).
"""

from django.db import migrations

from conclave.migration_ops import vendor_sql

FORWARD = """
ALTER TABLE event_queue SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 10000
);
"""

REVERSE = """
ALTER TABLE event_queue RESET (
    autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor,
    autovacuum_vacuum_insert_threshold,
    autovacuum_analyze_scale_factor,
    autovacuum_analyze_threshold
);
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0007_cheaper_integration_checks")]

    operations = [vendor_sql(forward={"postgresql": FORWARD}, reverse={"postgresql": REVERSE})]
