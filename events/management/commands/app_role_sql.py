import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg import ClientCursor

APPEND_ONLY_TABLES = (
    "events",
    "agent_keys",
    "keeper_keys",
    "clock_drift_warnings",
    "checkpoints",
    "checkpoint_cosignatures",
)
QUEUE_TABLE = "event_queue"


class Command(BaseCommand):
    help = (
        "Print the SQL that creates a least-privilege application role: SELECT and INSERT on "
        "the event store (never UPDATE, DELETE or TRUNCATE), ordinary rights elsewhere. With "
        "--apply, create (or update) the role and its grants in the database now, with the "
        "password in APP_DATABASE_PASSWORD: the image's migrate step does so after each "
        "migration, so new tables are granted too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default="conclave_app")
        parser.add_argument(
            "--password-placeholder",
            default=":'app_password'",
            help="psql variable holding the password (set with \\set app_password ...)",
        )
        parser.add_argument(
            "--apply",
            action="store_true",
            help="run it now (as the tables' owner), password from APP_DATABASE_PASSWORD",
        )

    def handle(
        self, *args: Any, role: str, password_placeholder: str, apply: bool, **options: Any
    ) -> None:
        if not role.replace("_", "").isalnum():
            raise CommandError("--role must be letters, digits and underscores")
        if apply:
            self._apply(role)
            return
        lines = [f"CREATE ROLE {role} LOGIN PASSWORD {password_placeholder};", *grants(role)]
        self.stdout.write("\n".join(lines))

    def _apply(self, role: str) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("--apply needs PostgreSQL (DATABASE_URL)")
        password = os.environ.get("APP_DATABASE_PASSWORD", "")
        if len(password) < 16:
            raise CommandError("APP_DATABASE_PASSWORD must hold the role's password (16+ chars)")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            # DDL takes no server-side parameters: the password is quoted by the client.
            with ClientCursor(connection.connection) as ddl, connection.wrap_database_errors:
                ddl.execute(f"{verb} ROLE {role} LOGIN PASSWORD %s", [password])
            for line in grants(role):
                if not line.startswith("--"):
                    cursor.execute(line)
        self.stdout.write(f"role {role}: {verb.lower()}d, grants applied")


def grants(role: str) -> list[str]:
    tables = connection.introspection.table_names()
    other_tables = sorted(set(tables) - {*APPEND_ONLY_TABLES, QUEUE_TABLE})
    return [
        f"GRANT USAGE ON SCHEMA public TO {role};",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};",
        "-- The event store and key registry: read and append only.",
        *(f"GRANT SELECT, INSERT ON {table} TO {role};" for table in APPEND_ONLY_TABLES),
        # Rotation sets active_until: the only column of a key row that may change.
        f"GRANT UPDATE (active_until) ON agent_keys, keeper_keys TO {role};",
        "-- The queue: writers insert, the integrator settles and purges (triggers check).",
        f"GRANT SELECT, INSERT, DELETE ON {QUEUE_TABLE} TO {role};",
        f"GRANT UPDATE (sequence, rejected_reason, processed_at) ON {QUEUE_TABLE} TO {role};",
        "-- Application tables: ordinary rights, never TRUNCATE.",
        *(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role};" for table in other_tables),
    ]
