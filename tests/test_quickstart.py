"""The quick start as a newcomer meets it: `make run` with no DATABASE_URL and no REDIS_URL.

These run in the SQLite pass of `make test` (marker `quickstart`).
"""

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, clean_env, free_port

pytestmark = pytest.mark.quickstart

START_TIMEOUT = 120


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class QuickStart:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "make-run.log"
        self.env = clean_env(
            PORT=str(self.port),
            CONCLAVE_VAR_DIR=str(tmp_path / "var"),
            PYTHONUNBUFFERED="1",
            **env,
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "run"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output()):
            assert time.monotonic() < deadline, f"never logged {pattern!r}:\n{self.output()}"
            time.sleep(0.2)

    def logged(self) -> list[dict]:
        """The JSON lines of every process (honcho puts "HH:MM:SS web.1 | " before each)."""
        return [
            json.loads(line.split("| ", 1)[1])
            for line in self.output().splitlines()
            if "| {" in line
        ]

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run exited early:\n{self.output()}"
            try:
                if get(self.base + "/v1/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"make run did not serve within {START_TIMEOUT}s:\n{self.output()}")

    def stop(self, sig: signal.Signals, *, whole_group: bool) -> tuple[int, set[int]]:
        started = descendants(self.process.pid)
        if whole_group:  # what a terminal's Ctrl-C does
            os.killpg(self.process.pid, sig)
        else:  # what a process manager's SIGTERM to `make run` does
            self.process.send_signal(sig)
        returncode = self.process.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.2)
        return returncode, {pid for pid in started if alive(pid)}

    def kill(self) -> None:
        if self.process.poll() is None:
            for pid in descendants(self.process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def quickstart(tmp_path):
    started = []

    def start(**env: str) -> QuickStart:
        run = QuickStart(tmp_path, **env)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()


def test_make_run__fresh_checkout__serves_health_ready_metrics_schema(quickstart, tmp_path):
    run = quickstart()
    run.wait_until_serving()

    for _ in range(10):
        get(run.base + "/v1/health")
    health_status, health = get(run.base + "/v1/health")
    ready_status, ready = get(run.base + "/v1/ready")
    metrics_status, metrics = get(run.base + "/metrics")
    schema_status, schema = get(run.base + "/api/schema/")

    assert health_status == 200
    assert json.loads(health)["hsm_mode"] == "DEVELOPMENT"
    assert ready_status == 200
    assert json.loads(ready) == {
        "status": "ready",
        "database": "connected",
        "redis": "not_configured",
        "broker": "connected",
        "outbox": {"backlog": 0, "oldest_age_seconds": 0.0},
    }
    assert metrics_status == 200
    # Samples of both gunicorn workers are summed: all 11 health requests are counted.
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.decode().splitlines()
        if line.startswith("conclave_http_requests_total{") and 'view="health"' in line
    ]
    assert sum(counted) >= 11
    assert schema_status == 200
    assert b"/v1/ready" in schema
    assert (tmp_path / "var" / "db.sqlite3").is_file()
    assert "Created staff user 'staff'" in run.output()


def test_make_run__a_request__logged_once_as_json_with_its_request_id(quickstart):
    """The request log's line and nothing else: gunicorn writes its own access line for every
    request whenever it is given a logging configuration, whatever `accesslog` says."""
    run = quickstart()
    run.wait_until_serving()
    probe = uuid.uuid4().hex

    with urllib.request.urlopen(f"{run.base}/v1/health?probe={probe}", timeout=5) as response:  # noqa: S310 - loopback
        request_id = response.headers["X-Request-ID"]
    run.wait_for_output(probe, timeout=10)
    time.sleep(1.0)  # a second line, if there were one, is written right after the first

    # Every line naming the probe, JSON or not (gunicorn's own access line is plain text).
    lines = [line.split("| ", 1)[1] for line in run.output().splitlines() if probe in line]
    logged = [json.loads(line) for line in lines]
    assert [(entry["event"], entry.get("request_id")) for entry in logged] == [
        ("request_finished", request_id)
    ]
    assert logged[0]["request"] == f"GET /v1/health?probe={probe}"


def test_make_run__celery_worker__answers_through_filesystem_broker(quickstart):
    run = quickstart()
    run.wait_until_serving()

    deadline = time.monotonic() + 60
    while True:
        ping = subprocess.run(
            [
                str(REPO_ROOT / ".venv/bin/celery"),
                "--app",
                "conclave",
                "inspect",
                "ping",
                "--timeout",
                "3",
            ],
            cwd=REPO_ROOT,
            env={**run.env, "DJANGO_SETTINGS_MODULE": "conclave.settings.local"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if ping.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)

    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout
    # The ping's own stderr included: a newcomer's first start warns of nothing.
    warned = [
        line
        for line in (run.output() + ping.stderr).splitlines()
        if re.search(r'"level": "(warning|error|critical)"', line)
        and '"event": "request_finished"' not in line
    ]
    assert warned == []


def test_make_run__idle_outbox_sweep__not_logged__a_sweep_that_finds_rows_is(quickstart, tmp_path):
    # Port 9 on loopback refuses: the left-behind message goes nowhere.
    run = quickstart(NOTIFY_DISPATCH_SECONDS="0.5", TELEGRAM_API_BASE_URL="http://127.0.0.1:9")
    run.wait_until_serving()
    run.wait_for_output(r"worker@\S+ ready")
    time.sleep(2)  # four idle sweeps, one every half second
    # A row due now that no task was queued for (as after a broker outage): only the sweep
    # can find it.
    with contextlib.closing(sqlite3.connect(tmp_path / "var" / "db.sqlite3")) as database:
        with database:
            database.execute(
                "INSERT INTO notifications_outbox (kind, chat_id, text, status, attempts,"
                " next_attempt_at, last_error, idempotency_key, dedupe_key, created_at)"
                " VALUES ('order_created', 42, 'left behind', 'pending', 0,"
                " '2000-01-01 00:00:00', '', ?, ?, '2000-01-01 00:00:00')",
                (f"left-behind-{uuid.uuid4()}", uuid.uuid4().hex),
            )

    run.wait_for_output('"event": "due_notifications_dispatched"')

    logged = run.logged()
    assert {"event": "due_notifications_dispatched", "count": 1}.items() <= next(
        entry for entry in logged if entry["event"] == "due_notifications_dispatched"
    ).items()
    # The idle sweeps before it wrote nothing, nor did the sweep's own Celery lines.
    assert [
        entry
        for entry in logged
        if "dispatch_due_notifications" in json.dumps(entry)
        and entry["event"] != "due_notifications_dispatched"
        and entry["level"] == "info"
    ] == []


def test_make_run__ctrl_c__stops_every_process(quickstart):
    run = quickstart()
    run.wait_until_serving()
    assert len(descendants(run.process.pid)) >= 6  # honcho, gunicorn + 2 workers, celery x2

    returncode, survivors = run.stop(signal.SIGINT, whole_group=True)

    assert survivors == set()
    assert returncode != 0


def test_make_run__sigterm_to_make__stops_every_process(quickstart):
    run = quickstart()
    run.wait_until_serving()

    returncode, survivors = run.stop(signal.SIGTERM, whole_group=False)

    assert survivors == set()
    with pytest.raises(OSError):
        get(run.base + "/v1/health")
    assert returncode != 0


def test_make_run__second_start__reuses_data_and_seeds_nothing_new(quickstart):
    first = quickstart()
    first.wait_until_serving()
    first.stop(signal.SIGTERM, whole_group=False)

    second = quickstart()
    second.wait_until_serving()

    assert "already exists; left unchanged" in second.output()


def test_make_run__dev_mode_in_production__exits_naming_the_error(tmp_path):
    env = clean_env(
        DEV_MODE="true",
        ENVIRONMENT="production",
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        PORT=str(free_port()),
    )

    result = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode != 0
    assert "DevModeEnvironmentMismatchError" in result.stdout + result.stderr
    assert not (tmp_path / "var" / "db.sqlite3").exists()  # refused before migrating


@pytest.mark.django_db
def test_ready__sqlite_no_redis__connected_and_not_configured(client):
    response = client.get("/v1/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "connected",
        "redis": "not_configured",
        "broker": "connected",
        "outbox": {"backlog": 0, "oldest_age_seconds": 0.0},
    }


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB filesystem of the test's own (tmpfs: mounting needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_sqlite_disk_full__orders_get_507_storage_full__served_again_once_freed(small_disk):
    from tests.conftest import gunicorn, run_manage
    from tests.http import call
    from tests.workshop import RUNBOOK_ORDER

    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(small_disk),
        SIGNING_KEY_DIR=str(small_disk / "keys"),
        LOG_LEVEL="ERROR",
    )
    for step in (["migrate", "-v0"], ["keys", "bootstrap"]):
        result = run_manage(*step, env=env)
        assert result.returncode == 0, result.stderr
    with gunicorn(env, workers=1) as base:
        assert call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER)[0] == 201
        filler = small_disk / "filler"
        with open(filler, "wb") as file, contextlib.suppress(OSError):
            while True:  # until the disk is full
                file.write(b"\0" * 65536)
                file.flush()
        full = [call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER) for _ in range(5)]
        filler.unlink()
        freed = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER)

    assert {status for status, _ in full} == {507}, full
    assert {body["error"] for _, body in full} == {"storage_full"}
    assert freed[0] == 201
    database = sqlite3.connect(small_disk / "db.sqlite3")
    assert database.execute("SELECT count(*) FROM orders").fetchone()[0] == 2
