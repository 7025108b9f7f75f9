"""The reliability figures in bench/results/latest.json: the suite's fuzzing, authorization
and fault-injection tests run here in a pytest of their own, and their outcome recorded.

- `fuzz_calls` / `fuzz_server_errors`: the Schemathesis run's tally (tests/test_fuzz.py,
  FUZZ_MAX_EXAMPLES cases an operation, each sent as every persona);
- `authorization_cases`: route × method × persona checks that passed;
- `fault_<scenario>`: lost plus duplicated writes in that scenario (each test asserts both
  are 0; a failing test stops the benchmark instead of giving a figure).
"""

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from bench.harness import Result, benchmark

REPO = Path(__file__).resolve().parents[1]
FAULTS = {
    "postgres_restart": "tests/test_faults_processes.py::"
    "test_postgres_restart_under_load__503_while_down__served_after__no_half_written_order",
    "redis_stopped": "tests/test_health.py::"
    "test_redis_stopped__flags_from_the_database__orders_taken__the_halt_still_refuses",
    "broker_stopped": "tests/test_notifications_processes.py::"
    "test_broker_down__orders_succeed__messages_delivered_once_it_is_back",
    "worker_sigkill": "tests/test_notifications_processes.py::"
    "test_telegram_hanging__order_answers__worker_killed_mid_send__no_loss_no_duplicate",
    "integrator_killed": "tests/test_event_store_processes.py::"
    "test_concurrent_writers_and_integrators__killed_integrator__no_gap_no_fork_no_loss",
    "telegram_errors": "tests/test_notifications_processes.py::"
    "test_500_three_times_then_429__arrives_once",
    "backup_restore": "tests/test_backup_restore.py::"
    "test_pg_dump_then_pg_restore__log_verifies__anchor_holds__appends_continue",
}


def _cases(report: Path) -> list[tuple[str, bool]]:
    """(test id, passed) for each test case of a JUnit report."""
    cases = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own file
        failed = any(child.tag in ("failure", "error", "skipped") for child in case)
        file = case.get("classname", "").replace(".", "/") + ".py"
        cases.append((f"{file}::{case.get('name')}", not failed))
    return cases


def _test_env(fuzz: Path) -> dict[str, str]:
    """The suite's environment: the benchmarks' own settings (the integrator mode, the key
    folder) are not the tests'."""
    env = {k: v for k, v in os.environ.items() if k not in ("EVENT_INTEGRATION", "SIGNING_KEY_DIR")}
    return {**env, "FUZZ_REPORT": str(fuzz)}


@benchmark
def reliability() -> list[Result]:
    folder = Path(tempfile.mkdtemp(prefix="conclave-reliability-"))
    fuzz, junit = folder / "fuzz.json", folder / "junit.xml"
    selection = ["tests/test_fuzz.py", "tests/test_authorization.py", *FAULTS.values()]
    subprocess.run(  # noqa: S603 - this interpreter, this project's tests
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         *selection],
        cwd=REPO, env=_test_env(fuzz), check=False,
    )  # fmt: skip
    cases = _cases(junit)
    failed = [name for name, passed in cases if not passed]
    if failed:
        raise RuntimeError(f"reliability tests failed: {failed}")
    tally = json.loads(fuzz.read_text())
    authorization = sum(1 for name, _ in cases if "test_authorization" in name)
    results = [
        Result("fuzz_calls", tally["calls"], "calls",
               f"operations x personas ({tally['max_examples_per_operation']} cases each)",
               tally["operations"] * tally["personas"]),
        Result("fuzz_server_errors", tally["server_errors"], "responses", "calls made",
               tally["calls"]),
        Result("authorization_cases", authorization, "tests", "personas per case", 7),
    ]  # fmt: skip
    ran = {name for name, _ in cases}
    for scenario, test in FAULTS.items():
        if test not in ran:
            raise RuntimeError(f"the fault test of {scenario} did not run: {test}")
        results.append(
            Result(f"fault_{scenario}", 0, "lost + duplicated", "test passed (asserts both 0)", 1)
        )
    return results
