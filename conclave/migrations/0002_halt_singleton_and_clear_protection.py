"""The halt singleton row and the runbook's halt clear protection.

`is_halted` goes from true to false only if a completed ceremony for the current halt holds
approvals from at least its quorum of distinct keepers whose keys are registered and not
retired. No connection name, setting or session variable turns this off. A halt always opens
a new `halt_number`, so a ceremony can never clear a later halt. Approvals are never changed
or deleted; a ceremony only ever goes from open to completed. There is one halt row, forever.
"""

from django.db import migrations

from conclave.migration_ops import vendor_sql

HALT_STATE_ID = "00000000-0000-0000-0000-000000000001"

POSTGRES_FORWARD = rf"""
INSERT INTO halt_state (id, is_halted, reason, halt_number, halted_by, channel, cleared_by,
                        updated_at)
VALUES ('{HALT_STATE_ID}', false, NULL, 0, '', '', '', now());

ALTER TABLE halt_state ADD CONSTRAINT halt_state_singleton CHECK (id = '{HALT_STATE_ID}');
ALTER TABLE halt_ceremonies ADD CONSTRAINT halt_ceremony_quorum_positive CHECK (quorum >= 1);

CREATE OR REPLACE FUNCTION conclave_halt_clear_protection() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the halt state row is never deleted' USING ERRCODE = 'raise_exception';
    END IF;
    IF NEW.id <> OLD.id OR NEW.halt_number < OLD.halt_number
       OR (NEW.is_halted AND NOT OLD.is_halted AND NEW.halt_number <> OLD.halt_number + 1)
       OR (NEW.halt_number <> OLD.halt_number AND NOT (NEW.is_halted AND NOT OLD.is_halted))
    THEN
        RAISE EXCEPTION 'halt_number only advances, by one, when a halt is raised'
            USING ERRCODE = 'raise_exception';
    END IF;
    IF OLD.is_halted AND NOT NEW.is_halted AND NOT EXISTS (
        SELECT 1 FROM halt_ceremonies c
        WHERE c.halt_number = OLD.halt_number AND c.status = 'completed'
          AND (SELECT count(DISTINCT a.keeper_id)
               FROM halt_ceremony_approvals a
               JOIN keeper_keys k ON k.key_id = a.keeper_key_id AND k.keeper_id = a.keeper_id
               WHERE a.ceremony_id = c.id
                 AND (k.active_until IS NULL OR k.active_until > clock_timestamp())
              ) >= c.quorum
    ) THEN
        RAISE EXCEPTION 'halt clear protection: halt % has no completed ceremony with a quorum of keepers',
            OLD.halt_number USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER halt_clear_protection BEFORE UPDATE OR DELETE ON halt_state
    FOR EACH ROW EXECUTE FUNCTION conclave_halt_clear_protection();
-- Fires even with session_replication_role = replica, which silences ordinary triggers.
ALTER TABLE halt_state ENABLE ALWAYS TRIGGER halt_clear_protection;
CREATE TRIGGER prevent_halt_state_truncate BEFORE TRUNCATE ON halt_state
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();

CREATE OR REPLACE FUNCTION conclave_protect_ceremony() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_TABLE_NAME = 'halt_ceremony_approvals' THEN
        RAISE EXCEPTION 'ceremony records are never changed or deleted: % on %', TG_OP,
            TG_TABLE_NAME USING ERRCODE = 'raise_exception';
    END IF;
    IF NEW.id <> OLD.id OR NEW.halt_number <> OLD.halt_number OR NEW.challenge <> OLD.challenge
       OR NEW.quorum <> OLD.quorum OR OLD.status <> 'open' THEN
        RAISE EXCEPTION 'a ceremony only goes from open to completed, once'
            USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER protect_halt_ceremony BEFORE UPDATE OR DELETE ON halt_ceremonies
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_ceremony();
CREATE TRIGGER protect_halt_ceremony_approval BEFORE UPDATE OR DELETE ON halt_ceremony_approvals
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_ceremony();
"""

POSTGRES_REVERSE = f"""
DROP TRIGGER protect_halt_ceremony_approval ON halt_ceremony_approvals;
DROP TRIGGER protect_halt_ceremony ON halt_ceremonies;
DROP FUNCTION conclave_protect_ceremony();
DROP TRIGGER prevent_halt_state_truncate ON halt_state;
DROP TRIGGER halt_clear_protection ON halt_state;
DROP FUNCTION conclave_halt_clear_protection();
ALTER TABLE halt_ceremonies DROP CONSTRAINT halt_ceremony_quorum_positive;
ALTER TABLE halt_state DROP CONSTRAINT halt_state_singleton;
DELETE FROM halt_state WHERE id = '{HALT_STATE_ID}';
"""

# SQLite stores UUIDs as 32 hex characters without dashes.
SQLITE_ID = HALT_STATE_ID.replace("-", "")

SQLITE_FORWARD = f"""
INSERT INTO halt_state (id, is_halted, reason, halt_number, halted_by, channel, cleared_by,
                        updated_at)
VALUES ('{SQLITE_ID}', 0, NULL, 0, '', '', '', strftime('%Y-%m-%d %H:%M:%f', 'now'));

CREATE TRIGGER halt_state_singleton BEFORE INSERT ON halt_state
BEGIN SELECT RAISE(ABORT, 'there is one halt state row'); END;
CREATE TRIGGER prevent_halt_state_delete BEFORE DELETE ON halt_state
BEGIN SELECT RAISE(ABORT, 'the halt state row is never deleted'); END;
CREATE TRIGGER halt_number_advances BEFORE UPDATE ON halt_state
WHEN NEW.id <> OLD.id OR NEW.halt_number < OLD.halt_number
  OR (NEW.is_halted AND NOT OLD.is_halted AND NEW.halt_number <> OLD.halt_number + 1)
  OR (NEW.halt_number <> OLD.halt_number AND NOT (NEW.is_halted AND NOT OLD.is_halted))
BEGIN SELECT RAISE(ABORT, 'halt_number only advances, by one, when a halt is raised'); END;
CREATE TRIGGER halt_clear_protection BEFORE UPDATE ON halt_state
WHEN OLD.is_halted AND NOT NEW.is_halted AND NOT EXISTS (
    SELECT 1 FROM halt_ceremonies c
    WHERE c.halt_number = OLD.halt_number AND c.status = 'completed' AND c.quorum >= 1
      AND (SELECT count(DISTINCT a.keeper_id)
           FROM halt_ceremony_approvals a
           JOIN keeper_keys k ON k.key_id = a.keeper_key_id AND k.keeper_id = a.keeper_id
           WHERE a.ceremony_id = c.id
             AND (k.active_until IS NULL OR julianday(k.active_until) > julianday('now'))
          ) >= c.quorum)
BEGIN
  SELECT RAISE(ABORT, 'halt clear protection: no completed ceremony with a quorum of keepers');
END;
CREATE TRIGGER protect_halt_ceremony BEFORE UPDATE ON halt_ceremonies
WHEN NEW.id <> OLD.id OR NEW.halt_number <> OLD.halt_number OR NEW.challenge <> OLD.challenge
  OR NEW.quorum <> OLD.quorum OR OLD.status <> 'open'
BEGIN SELECT RAISE(ABORT, 'a ceremony only goes from open to completed, once'); END;
CREATE TRIGGER prevent_halt_ceremony_delete BEFORE DELETE ON halt_ceremonies
BEGIN SELECT RAISE(ABORT, 'ceremony records are never changed or deleted'); END;
CREATE TRIGGER protect_halt_ceremony_approval BEFORE UPDATE ON halt_ceremony_approvals
BEGIN SELECT RAISE(ABORT, 'ceremony records are never changed or deleted'); END;
CREATE TRIGGER prevent_halt_ceremony_approval_delete BEFORE DELETE ON halt_ceremony_approvals
BEGIN SELECT RAISE(ABORT, 'ceremony records are never changed or deleted'); END;
"""

SQLITE_REVERSE = f"""
DROP TRIGGER prevent_halt_ceremony_approval_delete;
DROP TRIGGER protect_halt_ceremony_approval;
DROP TRIGGER prevent_halt_ceremony_delete;
DROP TRIGGER protect_halt_ceremony;
DROP TRIGGER halt_clear_protection;
DROP TRIGGER halt_number_advances;
DROP TRIGGER prevent_halt_state_delete;
DROP TRIGGER halt_state_singleton;
DELETE FROM halt_state WHERE id = '{SQLITE_ID}';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("conclave", "0001_halt_ceremony_verification"),
        ("events", "0002_append_only_and_chain_triggers"),
    ]

    operations = [
        vendor_sql(
            forward={"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD},
            reverse={"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE},
        )
    ]
