"""The Prometheus registry of the product. Apps declare their metrics here or import these.

Under gunicorn and Celery several processes serve one /metrics: when PROMETHEUS_MULTIPROC_DIR
is set (make run, the container) each process writes its samples there and the exposition
aggregates them; otherwise the in-process registry is exposed.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "conclave_http_requests_total",
    "HTTP requests served, by view, method and status code.",
    ["view", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "conclave_http_request_duration_seconds",
    "Time from the first middleware to the response, by view and method.",
    ["view", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

EVENTS_APPENDED = Counter(
    "conclave_events_appended_total", "Events appended to the log, by type.", ["event_type"]
)

APPEND_DURATION = Histogram(
    "conclave_event_append_seconds",
    "Time to integrate one batch of queued events (lock, chain, sign, witness, insert).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
EVENTS_REJECTED = Counter(
    "conclave_events_rejected_total",
    "Queued events the log could not take (no active key, refused by the database).",
)
INTEGRATION_LAG = Histogram(
    "conclave_event_integration_lag_seconds",
    "Time from an event's queueing to its integration into the log.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
)
CHAIN_HEAD = Gauge(
    "conclave_chain_head_sequence",
    "Sequence of the newest event this process appended.",
    multiprocess_mode="max",
)
CHECKPOINT_DURATION = Histogram(
    "conclave_checkpoint_duration_seconds",
    "Time to verify, extend the Merkle tree, sign and store a checkpoint.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CHECKPOINT_TREE_SIZE = Gauge(
    "conclave_checkpoint_tree_size",
    "Tree size of the latest signed checkpoint.",
    multiprocess_mode="max",
)
VERIFICATION_DURATION = Histogram(
    "conclave_chain_verification_seconds",
    "Duration of hash-chain verification runs.",
    buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


HALTED = Gauge(
    "conclave_halted",
    "1 while this process sees the system halted.",
    multiprocess_mode="max",
)
HALTS_RAISED = Counter("conclave_halts_raised_total", "Halts raised, by channel.", ["channel"])
CEREMONY_APPROVALS = Counter(
    "conclave_halt_ceremony_approvals_total", "Keeper approvals accepted in clearing ceremonies."
)
VERIFICATION_RUNS = Counter(
    "conclave_chain_verification_runs_total",
    "Chain verification runs, by kind and result.",
    ["kind", "result"],
)

# --- Notifications -----------------------------------------------------------------------------
NOTIFICATIONS_SENT = Counter(
    "conclave_notifications_sent_total", "Telegram messages Telegram accepted, by kind.", ["kind"]
)
NOTIFICATIONS_GIVEN_UP = Counter(
    "conclave_notifications_given_up_total",
    "Messages given up: failed (refused by Telegram) or dead (out of attempts).",
    ["status"],
)
NOTIFICATION_RETRIES = Counter(
    "conclave_notification_retries_total",
    "Sends put off for later, by reason (transient, retry_after, rate_limit, circuit_open).",
    ["reason"],
)
NOTIFICATION_LATENCY = Histogram(
    "conclave_notification_delivery_seconds",
    "From the order's commit (the outbox row) to Telegram accepting the message.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
OUTBOX_BACKLOG = Gauge(
    "conclave_outbox_backlog", "Messages waiting in the outbox (pending or being sent)."
)
