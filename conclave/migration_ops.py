"""Migration operations for SQL that differs between PostgreSQL and SQLite (triggers)."""

from collections.abc import Mapping

from django.db import migrations


def vendor_sql(forward: Mapping[str, str], reverse: Mapping[str, str]) -> migrations.RunPython:
    """Runs `forward[vendor]` / `reverse[vendor]` on the connection's vendor, nothing elsewhere."""

    def run(sql_by_vendor: Mapping[str, str]):
        def apply(apps, schema_editor):
            sql = sql_by_vendor.get(schema_editor.connection.vendor)
            if sql:
                with schema_editor.connection.cursor() as cursor:
                    if schema_editor.connection.vendor == "sqlite":
                        cursor.connection.executescript(sql)
                    else:
                        cursor.execute(sql)

        return apply

    return migrations.RunPython(run(forward), run(reverse))
