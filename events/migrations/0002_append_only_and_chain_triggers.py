"""Database-enforced invariants of the event store, with the runbook's trigger names.

PostgreSQL: append-only events (even for the table owner: TRUNCATE is refused by a statement
trigger), the hash chain, signature format and key validity, witness attribution, the
database's own authority timestamp, clock-drift warnings, and keys that can never be deleted
or have their identity changed. SQLite (quick start) gets the equivalents it can express.
"""

from django.db import migrations

from conclave.migration_ops import vendor_sql

POSTGRES_FORWARD = r"""
CREATE OR REPLACE FUNCTION conclave_refuse_event_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'raise_exception';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER prevent_event_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_refuse_event_change();
CREATE TRIGGER prevent_event_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_refuse_event_change();

CREATE OR REPLACE FUNCTION conclave_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% may never be truncated', TG_TABLE_NAME USING ERRCODE = 'raise_exception';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER prevent_event_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();
CREATE TRIGGER prevent_agent_key_truncate BEFORE TRUNCATE ON agent_keys
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();
CREATE TRIGGER prevent_keeper_key_truncate BEFORE TRUNCATE ON keeper_keys
    FOR EACH STATEMENT EXECUTE FUNCTION conclave_refuse_truncate();

-- Fires first (BEFORE triggers run in name order): the database's clock is the authority.
CREATE OR REPLACE FUNCTION conclave_set_authority_timestamp() RETURNS trigger AS $$
BEGIN
    NEW.authority_timestamp := clock_timestamp();
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER set_authority_timestamp_on_insert BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_set_authority_timestamp();

CREATE OR REPLACE FUNCTION conclave_verify_hash_chain() RETURNS trigger AS $$
DECLARE
    head_sequence bigint;
    head_hash text;
BEGIN
    SELECT sequence, content_hash INTO head_sequence, head_hash
        FROM events ORDER BY sequence DESC LIMIT 1;
    IF head_sequence IS NULL THEN
        head_sequence := 0;
        head_hash := repeat('0', 64);
    END IF;
    IF NEW.sequence <> head_sequence + 1 THEN
        RAISE EXCEPTION 'hash chain: sequence % does not follow %', NEW.sequence, head_sequence
            USING ERRCODE = 'raise_exception';
    END IF;
    IF NEW.prev_hash <> head_hash THEN
        RAISE EXCEPTION 'hash chain: prev_hash of sequence % is not the content_hash of %',
            NEW.sequence, head_sequence USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER verify_hash_chain_on_insert BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_verify_hash_chain();

-- Is key_id a key of this kind and owner, active at the given time?
CREATE OR REPLACE FUNCTION conclave_key_active(
    p_key_id text, p_kind text, p_owner text, p_at timestamptz
) RETURNS boolean AS $$
    SELECT EXISTS (
        SELECT 1 FROM agent_keys
        WHERE key_id = p_key_id AND kind = p_kind AND agent_id = p_owner
          AND active_from <= p_at AND (active_until IS NULL OR p_at < active_until)
    );
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION conclave_validate_signature_format() RETURNS trigger AS $$
BEGIN
    IF NEW.content_hash !~ '^[0-9a-f]{64}$' OR NEW.prev_hash !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'hashes must be 64 lowercase hex characters' USING ERRCODE = 'raise_exception';
    END IF;
    IF NEW.signature !~ '^[0-9a-f]{128}$' OR NEW.witness_signature !~ '^[0-9a-f]{128}$' THEN
        RAISE EXCEPTION 'signatures must be 128 lowercase hex characters'
            USING ERRCODE = 'raise_exception';
    END IF;
    IF NEW.signing_mode NOT IN ('DEVELOPMENT', 'PRODUCTION') THEN
        RAISE EXCEPTION 'unknown signing_mode %', NEW.signing_mode USING ERRCODE = 'raise_exception';
    END IF;
    IF NOT conclave_key_active(NEW.signing_key_id, 'agent', NEW.agent_id, NEW.local_timestamp)
    THEN
        RAISE EXCEPTION 'signing key % is not an agent key of % active at %',
            NEW.signing_key_id, NEW.agent_id, NEW.local_timestamp USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER validate_signature_format_on_insert BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_validate_signature_format();

CREATE OR REPLACE FUNCTION conclave_validate_witness_attribution() RETURNS trigger AS $$
BEGIN
    IF NEW.witness_id = NEW.agent_id THEN
        RAISE EXCEPTION 'an agent cannot witness its own event' USING ERRCODE = 'raise_exception';
    END IF;
    IF NOT conclave_key_active(
        NEW.witness_key_id, 'witness', NEW.witness_id, NEW.local_timestamp
    ) THEN
        RAISE EXCEPTION 'witness key % is not a witness key of % active at %',
            NEW.witness_key_id, NEW.witness_id, NEW.local_timestamp USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER validate_witness_attribution_on_insert BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_validate_witness_attribution();

CREATE OR REPLACE FUNCTION conclave_log_clock_drift() RETURNS trigger AS $$
DECLARE
    threshold double precision;
    drift double precision;
BEGIN
    SELECT (value #>> '{}')::double precision INTO threshold
        FROM constitutional_config WHERE key = 'clock_drift_threshold_seconds';
    drift := abs(extract(epoch FROM NEW.authority_timestamp - NEW.local_timestamp));
    IF drift > coalesce(threshold, 5) THEN
        INSERT INTO clock_drift_warnings
            (event_sequence, local_timestamp, authority_timestamp, drift_seconds, created_at)
        VALUES (NEW.sequence, NEW.local_timestamp, NEW.authority_timestamp, drift, now());
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER log_clock_drift_on_insert AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION conclave_log_clock_drift();

-- FR76: keys are never deleted; a key's identity never changes; rotation only sets
-- active_until once.
CREATE OR REPLACE FUNCTION conclave_protect_key() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'keys are never deleted (FR76): % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'raise_exception';
    END IF;
    IF NEW.key_id <> OLD.key_id OR NEW.public_key <> OLD.public_key
       OR NEW.active_from <> OLD.active_from
       OR (OLD.active_until IS NOT NULL AND NEW.active_until IS DISTINCT FROM OLD.active_until)
    THEN
        RAISE EXCEPTION 'a key row may only gain an active_until, once'
            USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER prevent_agent_key_delete BEFORE DELETE ON agent_keys
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_key();
CREATE TRIGGER prevent_agent_key_change BEFORE UPDATE ON agent_keys
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_key();
CREATE TRIGGER prevent_keeper_key_delete BEFORE DELETE ON keeper_keys
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_key();
CREATE TRIGGER prevent_keeper_key_change BEFORE UPDATE ON keeper_keys
    FOR EACH ROW EXECUTE FUNCTION conclave_protect_key();

INSERT INTO constitutional_config (key, value, updated_at)
    VALUES ('clock_drift_threshold_seconds', '5', now());
"""

POSTGRES_REVERSE = r"""
DELETE FROM constitutional_config WHERE key = 'clock_drift_threshold_seconds';
DROP TRIGGER prevent_keeper_key_change ON keeper_keys;
DROP TRIGGER prevent_keeper_key_delete ON keeper_keys;
DROP TRIGGER prevent_agent_key_change ON agent_keys;
DROP TRIGGER prevent_agent_key_delete ON agent_keys;
DROP FUNCTION conclave_protect_key();
DROP TRIGGER log_clock_drift_on_insert ON events;
DROP FUNCTION conclave_log_clock_drift();
DROP TRIGGER validate_witness_attribution_on_insert ON events;
DROP FUNCTION conclave_validate_witness_attribution();
DROP TRIGGER validate_signature_format_on_insert ON events;
DROP FUNCTION conclave_validate_signature_format();
DROP FUNCTION conclave_key_active(text, text, text, timestamptz);
DROP TRIGGER verify_hash_chain_on_insert ON events;
DROP FUNCTION conclave_verify_hash_chain();
DROP TRIGGER set_authority_timestamp_on_insert ON events;
DROP FUNCTION conclave_set_authority_timestamp();
DROP TRIGGER prevent_keeper_key_truncate ON keeper_keys;
DROP TRIGGER prevent_agent_key_truncate ON agent_keys;
DROP TRIGGER prevent_event_truncate ON events;
DROP FUNCTION conclave_refuse_truncate();
DROP TRIGGER prevent_event_delete ON events;
DROP TRIGGER prevent_event_update ON events;
DROP FUNCTION conclave_refuse_event_change();
"""

ACTIVE_KEY = """
        SELECT 1 FROM agent_keys
        WHERE key_id = NEW.{key} AND kind = '{kind}' AND agent_id = NEW.{owner}
          AND julianday(active_from) <= julianday(NEW.local_timestamp)
          AND (active_until IS NULL
               OR julianday(NEW.local_timestamp) < julianday(active_until))"""

SQLITE_FORWARD = f"""
CREATE TRIGGER prevent_event_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
CREATE TRIGGER prevent_event_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;

CREATE TRIGGER set_authority_timestamp_on_insert BEFORE INSERT ON events
WHEN NEW.authority_timestamp IS NULL
  OR abs(julianday(NEW.authority_timestamp) - julianday('now')) * 86400 > 2
BEGIN SELECT RAISE(ABORT, 'authority_timestamp is set by the database'); END;

CREATE TRIGGER verify_hash_chain_on_insert BEFORE INSERT ON events
WHEN NEW.sequence <> coalesce((SELECT max(sequence) FROM events), 0) + 1
  OR NEW.prev_hash <> coalesce(
       (SELECT content_hash FROM events ORDER BY sequence DESC LIMIT 1), '{"0" * 64}')
BEGIN SELECT RAISE(ABORT, 'hash chain: sequence or prev_hash does not follow the head'); END;

CREATE TRIGGER validate_signature_format_on_insert BEFORE INSERT ON events
WHEN length(NEW.content_hash) <> 64 OR length(NEW.prev_hash) <> 64
  OR length(NEW.signature) <> 128 OR length(NEW.witness_signature) <> 128
  OR NEW.content_hash GLOB '*[^0-9a-f]*' OR NEW.prev_hash GLOB '*[^0-9a-f]*'
  OR NEW.signature GLOB '*[^0-9a-f]*' OR NEW.witness_signature GLOB '*[^0-9a-f]*'
  OR NEW.signing_mode NOT IN ('DEVELOPMENT', 'PRODUCTION')
  OR NOT EXISTS ({ACTIVE_KEY.format(key="signing_key_id", kind="agent", owner="agent_id")})
BEGIN SELECT RAISE(ABORT, 'signature format or signing key is not valid'); END;

CREATE TRIGGER validate_witness_attribution_on_insert BEFORE INSERT ON events
WHEN NEW.witness_id = NEW.agent_id
  OR NOT EXISTS ({ACTIVE_KEY.format(key="witness_key_id", kind="witness", owner="witness_id")})
BEGIN SELECT RAISE(ABORT, 'witness key is not valid for this event'); END;

CREATE TRIGGER log_clock_drift_on_insert AFTER INSERT ON events
WHEN abs(julianday(NEW.authority_timestamp) - julianday(NEW.local_timestamp)) * 86400 >
     coalesce((SELECT CAST(value AS REAL) FROM constitutional_config
               WHERE key = 'clock_drift_threshold_seconds'), 5)
BEGIN
  INSERT INTO clock_drift_warnings
      (event_sequence, local_timestamp, authority_timestamp, drift_seconds, created_at)
  VALUES (NEW.sequence, NEW.local_timestamp, NEW.authority_timestamp,
          abs(julianday(NEW.authority_timestamp) - julianday(NEW.local_timestamp)) * 86400,
          strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;

CREATE TRIGGER prevent_agent_key_delete BEFORE DELETE ON agent_keys
BEGIN SELECT RAISE(ABORT, 'keys are never deleted (FR76)'); END;
CREATE TRIGGER prevent_agent_key_change BEFORE UPDATE ON agent_keys
WHEN NEW.key_id <> OLD.key_id OR NEW.public_key <> OLD.public_key
  OR NEW.active_from <> OLD.active_from
  OR (OLD.active_until IS NOT NULL AND NEW.active_until IS NOT OLD.active_until)
BEGIN SELECT RAISE(ABORT, 'a key row may only gain an active_until, once'); END;
CREATE TRIGGER prevent_keeper_key_delete BEFORE DELETE ON keeper_keys
BEGIN SELECT RAISE(ABORT, 'keys are never deleted (FR76)'); END;
CREATE TRIGGER prevent_keeper_key_change BEFORE UPDATE ON keeper_keys
WHEN NEW.key_id <> OLD.key_id OR NEW.public_key <> OLD.public_key
  OR NEW.active_from <> OLD.active_from
  OR (OLD.active_until IS NOT NULL AND NEW.active_until IS NOT OLD.active_until)
BEGIN SELECT RAISE(ABORT, 'a key row may only gain an active_until, once'); END;

INSERT INTO constitutional_config (key, value, updated_at)
    VALUES ('clock_drift_threshold_seconds', '5', strftime('%Y-%m-%d %H:%M:%f', 'now'));
"""

SQLITE_REVERSE = """
DELETE FROM constitutional_config WHERE key = 'clock_drift_threshold_seconds';
DROP TRIGGER prevent_keeper_key_change;
DROP TRIGGER prevent_keeper_key_delete;
DROP TRIGGER prevent_agent_key_change;
DROP TRIGGER prevent_agent_key_delete;
DROP TRIGGER log_clock_drift_on_insert;
DROP TRIGGER validate_witness_attribution_on_insert;
DROP TRIGGER validate_signature_format_on_insert;
DROP TRIGGER verify_hash_chain_on_insert;
DROP TRIGGER set_authority_timestamp_on_insert;
DROP TRIGGER prevent_event_delete;
DROP TRIGGER prevent_event_update;
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_create_event_store_tables")]

    operations = [
        vendor_sql(
            forward={"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD},
            reverse={"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE},
        )
    ]
