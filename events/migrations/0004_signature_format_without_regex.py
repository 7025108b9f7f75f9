"""validate_signature_format_on_insert without bounded-repetition regexes.

PostgreSQL's regex engine takes about 30 µs to match `^[0-9a-f]{128}$` on a signature; the
trigger checked four such values per inserted event, about 90 µs a row and most of an
integrated batch's insert time. The same rule, lowercase hex of the exact length, as a length
test and an ltrim of the allowed characters, costs well under a microsecond.
"""

from django.db import migrations

from conclave.migration_ops import vendor_sql

FUNCTION = r"""
CREATE OR REPLACE FUNCTION conclave_validate_signature_format() RETURNS trigger AS $$
BEGIN
    IF {hash_check} THEN
        RAISE EXCEPTION 'hashes must be 64 lowercase hex characters' USING ERRCODE = 'raise_exception';
    END IF;
    IF {signature_check} THEN
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
"""


def not_hex(column: str, length: int) -> str:
    """True unless NEW.<column> is exactly `length` lowercase hex characters."""
    return f"(length(NEW.{column}) <> {length} OR ltrim(NEW.{column}, '0123456789abcdef') <> '')"


FORWARD = FUNCTION.format(
    hash_check=f"{not_hex('content_hash', 64)} OR {not_hex('prev_hash', 64)}",
    signature_check=f"{not_hex('signature', 128)} OR {not_hex('witness_signature', 128)}",
)
REVERSE = FUNCTION.format(
    hash_check="NEW.content_hash !~ '^[0-9a-f]{64}$' OR NEW.prev_hash !~ '^[0-9a-f]{64}$'",
    signature_check=(
        "NEW.signature !~ '^[0-9a-f]{128}$' OR NEW.witness_signature !~ '^[0-9a-f]{128}$'"
    ),
)


class Migration(migrations.Migration):
    dependencies = [("events", "0003_event_queue")]

    operations = [vendor_sql(forward={"postgresql": FORWARD}, reverse={"postgresql": REVERSE})]
