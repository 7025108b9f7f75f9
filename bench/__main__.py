"""`make bench`: runs every registered benchmark, prints a table, writes bench/results/latest.json.

A benchmark is a function returning `Result`s; register it in BENCHMARKS. `BENCH_ONLY=a,b` runs
only the benchmarks of those function names. Each Result carries
its figure and the baseline measured in the same run, so the ratio is what to compare.
"""

import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import bench.events  # noqa: F401 - registers its benchmarks
import bench.http  # noqa: F401
import bench.load  # noqa: F401
import bench.merkle  # noqa: F401 - after bench.events: it grows the log that one started
import bench.notify  # noqa: F401
import bench.reliability  # noqa: F401

# isort: off
import bench.mix  # noqa: F401 - registered last: it ends with the system halted (its drill)

# isort: on
from bench.harness import BENCHMARKS, Result

RESULTS = Path(__file__).resolve().parent / "results"


def scratch_database() -> None:
    """Benchmarks write a lot: they get a fresh database of their own on the same server, and
    an empty Redis database (a halt or a flag version an earlier run left there would be
    read back into the fresh database)."""
    import psycopg
    import redis
    from django.conf import settings

    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL).flushdb()

    server = settings.DATABASES["default"]
    admin = (
        f"host={server['HOST']} port={server['PORT'] or 5432} user={server['USER']} dbname=postgres"
    )
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute('DROP DATABASE IF EXISTS "conclave_bench" WITH (FORCE)')
        connection.execute('CREATE DATABASE "conclave_bench"')
    server["NAME"] = "conclave_bench"
    os.environ["DATABASE_URL"] = (
        f"postgres://{server['USER']}@{server['HOST']}:{server['PORT'] or 5432}/conclave_bench"
    )


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    # As deployed on PostgreSQL: writers queue, the integrator process logs (bench.events).
    os.environ.setdefault("EVENT_INTEGRATION", "integrator")
    os.environ.setdefault("SIGNING_KEY_DIR", tempfile.mkdtemp(prefix="conclave-bench-keys-"))
    import django
    from django.core.management import call_command

    django.setup()
    scratch_database()
    call_command("migrate", verbosity=0)
    results: list[Result] = []
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    for benchmark in BENCHMARKS:
        if not only or benchmark.__name__ in only:
            results.extend(benchmark())

    print(f"{'benchmark':<28} {'value':>14} {'baseline':>14} {'ratio':>8}  unit")
    for result in results:
        print(
            f"{result.name:<28} {result.value:>14.1f} {result.baseline:>14.1f} "
            f"{result.ratio:>8.3f}  {result.unit} (baseline: {result.baseline_name})"
        )
    if not results:
        print("no benchmarks registered yet")

    RESULTS.mkdir(exist_ok=True)
    report = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": [result.as_dict() for result in results],
    }
    name = "partial.json" if only else "latest.json"  # a partial run never replaces the full one
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
