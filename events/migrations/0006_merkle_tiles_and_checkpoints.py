"""Merkle tiles and checkpoints (SPEC 3.6).

`merkle_tiles` is derived data (rebuilt from `events` at will); `checkpoints` and
`checkpoint_cosignatures` are signed statements: never updated, deleted or truncated, on
PostgreSQL even by their owner, like `events`.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

from conclave.migration_ops import vendor_sql

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION conclave_refuse_checkpoint_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'raise_exception';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER prevent_checkpoint_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION conclave_refuse_checkpoint_change();
CREATE TRIGGER prevent_checkpoint_cosignature_change
    BEFORE UPDATE OR DELETE ON checkpoint_cosignatures
    FOR EACH ROW EXECUTE FUNCTION conclave_refuse_checkpoint_change();
CREATE TRIGGER prevent_checkpoint_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();
CREATE TRIGGER prevent_checkpoint_cosignature_truncate BEFORE TRUNCATE ON checkpoint_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();
"""

POSTGRES_REVERSE = """
DROP TRIGGER prevent_checkpoint_cosignature_truncate ON checkpoint_cosignatures;
DROP TRIGGER prevent_checkpoint_truncate ON checkpoints;
DROP TRIGGER prevent_checkpoint_cosignature_change ON checkpoint_cosignatures;
DROP TRIGGER prevent_checkpoint_change ON checkpoints;
DROP FUNCTION conclave_refuse_checkpoint_change();
"""

SQLITE_FORWARD = """
CREATE TRIGGER prevent_checkpoint_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE refused'); END;
CREATE TRIGGER prevent_checkpoint_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE refused'); END;
CREATE TRIGGER prevent_checkpoint_cosignature_update BEFORE UPDATE ON checkpoint_cosignatures
BEGIN SELECT RAISE(ABORT, 'checkpoint_cosignatures are append-only: UPDATE refused'); END;
CREATE TRIGGER prevent_checkpoint_cosignature_delete BEFORE DELETE ON checkpoint_cosignatures
BEGIN SELECT RAISE(ABORT, 'checkpoint_cosignatures are append-only: DELETE refused'); END;
"""

SQLITE_REVERSE = """
DROP TRIGGER prevent_checkpoint_cosignature_delete;
DROP TRIGGER prevent_checkpoint_cosignature_update;
DROP TRIGGER prevent_checkpoint_delete;
DROP TRIGGER prevent_checkpoint_update;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_set_based_insert_checks"),
    ]

    operations = [
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("tree_size", models.BigIntegerField(unique=True)),
                ("root_hash", models.CharField(max_length=64)),
                ("timestamp", models.DateTimeField()),
                ("key_id", models.CharField(max_length=100)),
                ("signature", models.CharField(max_length=128)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "db_table": "checkpoints",
                "ordering": ["-id"],
            },
        ),
        migrations.AlterField(
            model_name="agentkey",
            name="kind",
            field=models.CharField(
                choices=[("agent", "Agent"), ("witness", "Witness"), ("checkpoint", "Checkpoint")],
                default="agent",
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="MerkleTile",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("level", models.PositiveSmallIntegerField()),
                ("index", models.BigIntegerField()),
                ("hashes", models.BinaryField()),
            ],
            options={
                "db_table": "merkle_tiles",
                "constraints": [
                    models.UniqueConstraint(fields=("level", "index"), name="merkle_tile_position")
                ],
            },
        ),
        migrations.CreateModel(
            name="CheckpointCosignature",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("witness_id", models.CharField(max_length=200)),
                ("key_id", models.CharField(max_length=100)),
                ("signature", models.CharField(max_length=128)),
                (
                    "checkpoint",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cosignatures",
                        to="events.checkpoint",
                    ),
                ),
            ],
            options={
                "db_table": "checkpoint_cosignatures",
                "ordering": ["id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("checkpoint", "key_id"), name="one_cosignature_per_key"
                    )
                ],
            },
        ),
        vendor_sql(
            forward={"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD},
            reverse={"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE},
        ),
    ]
