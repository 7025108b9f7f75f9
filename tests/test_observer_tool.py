"""tools/observer.py, the outsider's check, run as a separate process against a real server."""

import ast
import contextlib
import hashlib
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
import rfc8785

from tests.conftest import REPO_ROOT, clean_env, gunicorn, run_manage

TOOL = REPO_ROOT / "tools" / "observer.py"
ADD_EVENTS = (
    "from events.services import event_append\n"
    "for n in range({n}): event_append(event_type='order.created', payload={{'n': n}})"
)

RESIGN_LATEST_WITH_ROOT = """
from django.db import connection
from events import crypto
from events.models import Checkpoint
from events.signing import get_signer
latest = Checkpoint.objects.order_by("-tree_size").first()
message = crypto.checkpoint_message(
    tree_size=latest.tree_size, root_hash="{root}",
    timestamp=crypto.format_timestamp(latest.timestamp),
)
signer = get_signer()
with connection.cursor() as cursor:
    cursor.execute("SET session_replication_role = replica")
    cursor.execute(
        "UPDATE checkpoints SET root_hash = %s, signature = %s WHERE id = %s",
        ["{root}", signer.sign(latest.key_id, message).hex(), latest.id],
    )
    for cosignature in latest.cosignatures.all():
        cursor.execute(
            "UPDATE checkpoint_cosignatures SET signature = %s WHERE id = %s",
            [signer.sign(cosignature.key_id, message).hex(), cosignature.id],
        )
"""


@pytest.fixture
def deployment(scratch_database, tmp_path):
    database = scratch_database("conclave_observer")
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        CELERY_BROKER_URL="filesystem://",
        LOG_LEVEL="WARNING",
        # A halt this deployment raises stays in its own keys, never the suite's.
        REDIS_URL="redis://127.0.0.1:6379/15",
        HALT_REDIS_PREFIX=f"observer-test-{uuid.uuid4().hex[:8]}",
    )
    for step in (
        ["migrate", "-v0"],
        ["keys", "bootstrap"],
        ["keys", "register", "--kind", "witness", "--owner", "WITNESS:B"],
        ["shell", "-c", ADD_EVENTS.format(n=300)],
        ["checkpoint"],
        ["shell", "-c", ADD_EVENTS.format(n=40)],
        ["checkpoint"],
    ):
        result = run_manage(*step, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    yield env, database.dsn
    prefix = env["HALT_REDIS_PREFIX"]
    subprocess.run(
        [
            "redis-cli",
            "-n",
            "15",
            "DEL",
            *(f"{prefix}:halt:{k}" for k in ("active", "reason", "number")),
        ],
        check=False,
        capture_output=True,
    )


def observe(base: str, *args: str) -> subprocess.CompletedProcess:
    # -I: isolated, so nothing of the project can be imported; only the venv's packages.
    return subprocess.run(
        [sys.executable, "-I", str(TOOL), "--server", base, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_observer_tool__imports_only_stdlib_cryptography_and_rfc8785():
    tree = ast.parse(TOOL.read_text())
    roots = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }

    assert roots - set(sys.stdlib_module_names) == {"cryptography", "rfc8785"}


def test_observer_tool__honest_log__verifies_then_later_runs_prove_consistency(
    deployment, tmp_path
):
    env, _ = deployment
    state = tmp_path / "observer-state.json"
    with gunicorn(env) as base:
        first = observe(base, "--state", str(state), "--samples", "20")
        kept = json.loads(state.read_text())
        added = run_manage("shell", "-c", ADD_EVENTS.format(n=25), env=env)
        assert added.returncode == 0, added.stderr
        assert run_manage("checkpoint", env=env).returncode == 0
        second = observe(base, "--state", str(state))

    assert first.returncode == 0, first.stderr
    assert "chain: 345 events verified" in first.stdout
    assert "checkpoints: 2 signed" in first.stdout
    assert "inclusion: 20 sampled events proven" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"extends the kept tree {kept['tree_size']}" in second.stdout
    assert json.loads(state.read_text())["tree_size"] > kept["tree_size"]


def test_observer_tool__event_rewritten_behind_the_triggers__fails_naming_it(deployment):
    env, dsn = deployment
    with psycopg.connect(dsn) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute("UPDATE events SET payload = '{\"n\": -1}' WHERE sequence = 120")

    with gunicorn(env) as base:
        result = observe(base)

    assert result.returncode == 1
    assert "FAILED: event 120: content_hash is not the hash of its content" in result.stderr


def test_observer_tool__checkpoint_signed_over_another_log__caught_by_its_own_root(deployment):
    # The server signs (with its real keys) a tree head that is not the root of what it serves.
    env, _ = deployment
    forge = run_manage("shell", "-c", RESIGN_LATEST_WITH_ROOT.format(root="11" * 32), env=env)
    assert forge.returncode == 0, forge.stderr

    with gunicorn(env) as base:
        result = observe(base)

    assert result.returncode == 1
    assert "its root is not the root of the log" in result.stderr


def test_observer_tool__kept_checkpoint_forged__refused(deployment, tmp_path):
    env, _ = deployment
    state = tmp_path / "observer-state.json"
    with gunicorn(env) as base:
        assert observe(base, "--state", str(state)).returncode == 0
        kept = json.loads(state.read_text())
        state.write_text(json.dumps({**kept, "root_hash": "00" * 32}))
        result = observe(base, "--state", str(state))

    assert result.returncode == 1
    assert "signature does not verify" in result.stderr


def test_observer_tool__server_unreachable__exit_2(tmp_path):
    result = observe("http://127.0.0.1:9")

    assert result.returncode == 2
    assert "cannot read" in result.stderr


@contextlib.contextmanager
def answering(answers: dict[str, bytes]) -> Iterator[str]:
    """A server on loopback that answers each path (query ignored) with its body, as JSON."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = answers.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


NO_CHECKPOINTS = b'{"checkpoints": [], "next_after_tree_size": null}'
FIRST_EVENT = {
    "schema_version": 1, "sequence": 1, "event_type": "keys.bootstrapped",
    "payload": {"keys": []}, "agent_id": "SYSTEM:hub", "signing_key_id": "k",
    "signing_mode": "ed25519", "local_timestamp": 5, "prev_hash": "0" * 64,
}  # fmt: skip


@pytest.mark.parametrize(
    "answers",
    [
        # An event that is not an object.
        {"/v1/observer/keys": b'{"keys": []}', "/v1/observer/checkpoints": NO_CHECKPOINTS,
         "/v1/observer/export": b"[1]\n"},
        # JSON nested deeper than Python's recursion.
        {"/v1/observer/keys": b"[" * 100_000},
        # A time that is not text, in an event whose hashes hold.
        {"/v1/observer/keys": b'{"keys": []}', "/v1/observer/checkpoints": NO_CHECKPOINTS,
         "/v1/observer/export": json.dumps({
             **FIRST_EVENT,
             "content_hash": hashlib.sha256(rfc8785.dumps(FIRST_EVENT)).hexdigest()}).encode()},
        # A checkpoint that is not an object.
        {"/v1/observer/keys": b'{"keys": []}', "/v1/observer/export": b"",
         "/v1/observer/checkpoints": b'{"checkpoints": [[1]], "next_after_tree_size": null}'},
    ],
    ids=["event-not-an-object", "nested-too-deep", "time-not-text", "checkpoint-not-an-object"],
)  # fmt: skip
def test_observer_tool__answers_of_the_wrong_shape__exit_2_cannot_read(answers):
    with answering(answers) as base:
        result = observe(base)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("cannot read the server's answers:"), result.stderr
    assert "Traceback" not in result.stderr


def test_startup__past_rewritten_and_relinked__the_anchor_halts_naming_the_event(deployment):
    # Event 50 rewritten and event 51 re-linked to it: every link after the anchor still
    # holds, so only the checkpoint's root can tell.
    env, dsn = deployment
    with psycopg.connect(dsn) as connection:
        connection.execute("SET session_replication_role = replica")
        forged = "ab" * 32
        connection.execute("UPDATE events SET content_hash = %s WHERE sequence = 50", [forged])
        connection.execute("UPDATE events SET prev_hash = %s WHERE sequence = 51", [forged])

    result = run_manage("preoperational_verify", env=env, timeout=120)

    assert result.returncode == 1
    assert "checkpoint_anchors" in result.stderr
    assert "first changed event: 50" in result.stderr
    with psycopg.connect(dsn) as connection:
        halted, reason = connection.execute("SELECT is_halted, reason FROM halt_state").fetchone()
    assert halted and "sequence 50" in reason


def test_anchor_root__on_both_cores__same_as_the_stored_tree(deployment):
    # Chunks of 16 leaves, so 345 events take the parallel path (each child on its own
    # connection) that a log of millions takes with chunks of 65,536.
    env, _ = deployment
    check = (
        "from events import tree\n"
        "tree.ROOT_CHUNK_HEIGHT = 4\n"
        "size = tree.log_size()\n"
        "for n in (1, 15, 16, 17, 64, 100, size):\n"
        "    assert tree.root_from_events(n, workers=2) == tree.root_from_events(n, workers=1)"
        " == tree.tree_root(n), n\n"
        "print('ok', size)"
    )

    result = run_manage("shell", "-c", check, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["ok", "345"]
