"""Notifications across real processes: gunicorn takes the orders, a Celery worker (with its
beat) delivers through a Redis broker of the test's own, to the fake Bot API on loopback."""

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import PYTHON, REPO_ROOT, clean_env, free_port, gunicorn, run_manage
from tests.fake_telegram import TOKEN, FakeTelegram, fake_telegram
from tests.http import call
from tests.workshop import RUNBOOK_ORDER

pytestmark = pytest.mark.django_db
ADMINS = (111, 222)
MECHANIC_CHAT = 555
PASSWORD = "a-long-enough-password-9"
WEBHOOK_SECRET = "process-test-webhook-secret"


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen]:
    """A Redis of the test's own (the broker), which the test may stop and start."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def celery_worker(
    env: dict[str, str], tmp_path, log: Path | None = None, level: str = "WARNING"
) -> Iterator[subprocess.Popen]:
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [PYTHON, "-m", "celery", "--app", "conclave", "worker", "--pool", "solo", "--beat",
         "--schedule", str(tmp_path / f"beat-{uuid.uuid4().hex[:6]}"), "--loglevel", level],
        cwd=REPO_ROOT, env=env, stdout=output, stderr=output, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        # (The beat is a child process: a worker killed outright leaves it running.)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if log:
            output.close()


@pytest.fixture
def telegram_world(scratch_database, tmp_path) -> Iterator[tuple[dict[str, str], FakeTelegram]]:
    database = scratch_database("conclave_notify")
    broker_port = free_port()
    with fake_telegram() as fake:
        env = clean_env(
            DJANGO_SETTINGS_MODULE="conclave.settings.test",
            DATABASE_URL=database.url,
            REDIS_URL="redis://127.0.0.1:6379/15",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_port}/0",
            HALT_REDIS_PREFIX=f"notify-{uuid.uuid4().hex[:8]}",
            SIGNING_KEY_DIR=str(tmp_path / "keys"),
            CONCLAVE_VAR_DIR=str(tmp_path / "var"),
            EVENT_INTEGRATION="inline",
            TELEGRAM_API_BASE_URL=fake.url,
            TELEGRAM_BOT_TOKEN=TOKEN,
            ADMIN_CHAT_IDS=",".join(map(str, ADMINS)),
            TELEGRAM_TIMEOUT_SECONDS="1",
            TELEGRAM_RATE_PER_CHAT="100/second",
            TELEGRAM_BREAKER_FAILURES="20",
            NOTIFY_BACKOFF_SECONDS="0.2",
            NOTIFY_DISPATCH_SECONDS="1",
            TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            LOG_LEVEL="WARNING",
        )
        steps = [
            ["migrate", "-v0"],
            ["keys", "bootstrap"],
            ["flags", "on", "ENABLE_TG_ADMIN_NOTIFS"],
            ["flags", "on", "ENABLE_TG_MECH_NOTIFS"],
            ["flags", "on", "ENABLE_CAR_NUMBER"],
            ["create_mechanic", "mika", "--password", PASSWORD,
             "--telegram-chat-id", str(MECHANIC_CHAT), "--language", "he"],
        ]  # fmt: skip
        for step in steps:
            result = run_manage(*step, env=env)
            assert result.returncode == 0, result.stderr
        shared = redis.Redis(port=6379, db=15)
        for pattern in ("pybreaker:conclave:telegram*", "LIMITS*"):
            for key in shared.scan_iter(pattern):
                shared.delete(key)
        with redis_server(broker_port) as broker:
            env["_BROKER_PID"] = str(broker.pid)
            env["_BROKER_PORT"] = str(broker_port)
            yield env, fake


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within the wait")
        time.sleep(0.1)


def post_order(base: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, body = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER, headers=headers)
    assert status == 201, body
    return body["id"]


def outbox(env: dict[str, str]) -> list[tuple]:
    import psycopg

    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT chat_id, status, attempts, last_error FROM notifications_outbox ORDER BY id"
        ).fetchall()


def test_order_and_status_change__each_chat_gets_exactly_one_message(telegram_world, tmp_path):
    env, fake = telegram_world
    with gunicorn(env) as base, celery_worker(env, tmp_path):
        token = call("POST", f"{base}/api/mechanic/login",
                     body={"username": "mika", "password": PASSWORD})[1]["token"]  # fmt: skip
        order_id = post_order(base, token)
        wait_for(lambda: all(fake.messages_to(chat) for chat in ADMINS))
        status, _ = call(
            "PATCH", f"{base}/api/mechanic/orders/{order_id}/status", body={"status": "in_progress"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert status == 200
        wait_for(lambda: fake.messages_to(MECHANIC_CHAT))
        time.sleep(3)  # two beat rounds: nothing is sent again

    for chat in ADMINS:
        [text] = fake.messages_to(chat)
        assert "TEST123456789" in text and "12-345-67" in text and "brake_pads" in text
    [mechanic_text] = fake.messages_to(MECHANIC_CHAT)
    assert "בטיפול" in mechanic_text  # in_progress, in the mechanic's Hebrew
    assert {row[1] for row in outbox(env)} == {"sent"}


def test_500_three_times_then_429__arrives_once(telegram_world, tmp_path):
    env, fake = telegram_world
    fake.fail_next((500, {}), (500, {}), (500, {}), (429, {"parameters": {"retry_after": 2}}))
    with gunicorn(env) as base, celery_worker(env, tmp_path):
        post_order(base)
        wait_for(lambda: all(fake.messages_to(chat) for chat in ADMINS))
        time.sleep(3)

    assert [len(fake.messages_to(chat)) for chat in ADMINS] == [1, 1]
    assert fake.calls == 2 + 4  # two sends and the four scripted refusals


def test_bad_chat__that_row_fails_with_the_reason__the_other_is_sent(telegram_world, tmp_path):
    env, fake = telegram_world
    fake.bad_chats.add(ADMINS[1])
    with gunicorn(env) as base, celery_worker(env, tmp_path):
        post_order(base)
        wait_for(lambda: {row[1] for row in outbox(env)} == {"sent", "failed"})
        time.sleep(3)  # two beat rounds: the failed row is never tried again

    assert outbox(env) == [
        (ADMINS[0], "sent", 1, ""),
        (ADMINS[1], "failed", 1, "400 Bad Request: chat not found"),
    ]
    assert len(fake.messages_to(ADMINS[0])) == 1


def test_broker_down__orders_succeed__messages_delivered_once_it_is_back(telegram_world, tmp_path):
    env, fake = telegram_world
    os.kill(int(env["_BROKER_PID"]), signal.SIGTERM)
    time.sleep(0.5)
    with gunicorn(env) as base:
        post_order(base)
        post_order(base)
        assert [row[1] for row in outbox(env)] == ["pending"] * 4
        with redis_server(int(env["_BROKER_PORT"])), celery_worker(env, tmp_path):
            wait_for(lambda: len(fake.accepted) == 4)
            time.sleep(3)

    assert [len(fake.messages_to(chat)) for chat in ADMINS] == [2, 2]


def test_telegram_hanging__order_answers__worker_killed_mid_send__no_loss_no_duplicate(
    telegram_world, tmp_path
):
    env, fake = telegram_world
    fake.hold.clear()  # Telegram takes calls but does not answer
    with gunicorn(env) as base:
        with celery_worker(env, tmp_path) as worker:
            post_order(base)  # answers 201 while the worker's call hangs
            wait_for(fake.held.is_set)
            assert fake.accepted == []
            os.killpg(worker.pid, signal.SIGKILL)  # the worker and its beat, as a machine dies
            worker.wait(timeout=10)
        fake.hold.set()
        with celery_worker(env, tmp_path):
            # The claim's lease (4 x TELEGRAM_TIMEOUT_SECONDS + 2) runs out, then the beat
            # hands the row to the new worker.
            wait_for(lambda: all(fake.messages_to(chat) for chat in ADMINS), seconds=60)
            time.sleep(3)

    assert [len(fake.messages_to(chat)) for chat in ADMINS] == [1, 1]
    assert {row[1] for row in outbox(env)} == {"sent"}


def test_bot_conversation__order_made_end_to_end__replay_ignored__wrong_secret_403(
    telegram_world, tmp_path
):
    env, fake = telegram_world
    chat = {"id": MECHANIC_CHAT, "type": "private"}
    sender = {"id": MECHANIC_CHAT, "is_bot": False, "first_name": "Mika"}
    updates = iter(range(1, 100))

    def webhook(update: dict, secret: str = WEBHOOK_SECRET) -> tuple[int, dict]:
        return call("POST", f"{base}/api/telegram/webhook", body=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": secret})  # fmt: skip

    def say(text: str) -> dict:
        update = {"update_id": next(updates), "message": {"message_id": 1, "date": 0,
                  "chat": chat, "from": sender, "text": text}}  # fmt: skip
        return update

    def press(data: str) -> dict:
        return {"update_id": next(updates), "callback_query": {
            "id": str(uuid.uuid4()), "from": sender, "data": data,
            "message": {"message_id": 1, "date": 0, "chat": chat}}}  # fmt: skip

    def answered(update: dict) -> str:
        """Sends the update like Telegram and waits, like a person, for the bot's answer."""
        seen = len(fake.messages_to(MECHANIC_CHAT))
        status, _ = webhook(update)
        assert status == 200
        wait_for(lambda: len(fake.messages_to(MECHANIC_CHAT)) > seen)
        return fake.messages_to(MECHANIC_CHAT)[-1]

    with gunicorn(env) as base, celery_worker(env, tmp_path):
        assert webhook(say("/order"), secret="wrong")[0] == 403
        assert answered(say("/start")) == "בחר שפה:"
        assert answered(press("lang:en")).startswith("Hello, mika!")
        assert answered(say("/order")).startswith("Type the part you need")
        assert answered(say("Alternator")).startswith("Send the car's VIN")
        assert answered(say("TEST123456789")).startswith("Send the car number")
        assert answered(say("12-345-67")) == "Original part or analog?"
        assert answered(press("origin:original")).startswith("Send a photo")
        assert "Alternator" in answered(press("skip"))
        confirm = press("confirm")
        created = answered(confirm)
        assert created.startswith("Order #") and created.endswith("when it is ready.")
        # The admins heard of the new order as of any other.
        wait_for(lambda: all("Alternator" in " ".join(fake.messages_to(c)) for c in ADMINS))
        before = len(fake.accepted)
        assert webhook(confirm) == (200, {})  # Telegram delivering it again
        time.sleep(3)  # two beat rounds
        assert len(fake.accepted) == before

    import psycopg

    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT part_type, vin, car_number, telegram_chat_id, telegram_language FROM orders"
        ).fetchall()
    assert rows == [("Alternator", "TEST123456789", "12-345-67", MECHANIC_CHAT, "en")]


def test_a_full_run_at_debug_level__no_password_token_or_secret_in_any_log(
    telegram_world, tmp_path
):
    env, fake = telegram_world
    env = {**env, "LOG_LEVEL": "DEBUG"}
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    new_password, wrong_password = "another-long-password-7", "a-wrong-password-guess-3"
    with (
        gunicorn(env, log=web_log) as base,
        celery_worker(env, tmp_path, log=worker_log, level="DEBUG"),
    ):
        token = call("POST", f"{base}/api/mechanic/login",
                     body={"username": "mika", "password": PASSWORD})[1]["token"]  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        post_order(base, token)
        changed = call("POST", f"{base}/api/mechanic/password", headers=auth,
                       body={"current_password": PASSWORD, "new_password": new_password})  # fmt: skip
        refused = call("POST", f"{base}/api/mechanic/login",
                       body={"username": "mika", "password": wrong_password})  # fmt: skip
        webhook = call("POST", f"{base}/api/telegram/webhook", body={"update_id": 1},
                       headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})  # fmt: skip
        wait_for(lambda: all(fake.messages_to(chat) for chat in ADMINS))
        time.sleep(1)

    assert (changed[0], refused[0], webhook[0]) == (200, 401, 200)
    logs = web_log.read_text() + worker_log.read_text()
    # Both processes logged at DEBUG: the requests, the worker's tasks.
    assert "request_finished" in logs and "/api/mechanic/login" in logs
    assert "notifications.tasks" in logs
    for secret in (PASSWORD, new_password, wrong_password, token, TOKEN, WEBHOOK_SECRET):
        assert secret not in logs, f"{secret[:4]}... is in the logs"
