import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from nacl.signing import SigningKey


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def rate(operation: Callable[[], object], *, seconds: float = 2.0) -> float:
    """Operations per second of `operation`, run repeatedly for about `seconds`."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


def in_turns(*measurements: Callable[[], float], turns: int = 6) -> list[float]:
    """Each measurement taken `turns` times in alternating order (A B, B A, A B, ...), so that
    a machine speeding up or slowing down meanwhile weighs on each alike; returns the median
    of each one's turns, in the order given."""
    taken: list[list[float]] = [[] for _ in measurements]
    order = list(range(len(measurements)))
    for turn in range(turns):
        for index in order if turn % 2 == 0 else reversed(order):
            taken[index].append(measurements[index]())
    return [statistics.median(values) for values in taken]


def bare_ed25519_verify() -> Callable[[], object]:
    """One Ed25519 verification by libsodium, the implementation the product verifies with
    (events.crypto), with nothing of the product around it: the ceiling verification is
    measured against."""
    key = SigningKey.generate()
    signed, verify_key = key.sign(b"\x01" * 32), key.verify_key
    return lambda: verify_key.verify(signed)


BENCHMARKS: list[Callable[[], list[Result]]] = []


def benchmark(function: Callable[[], list[Result]]) -> Callable[[], list[Result]]:
    BENCHMARKS.append(function)
    return function


PEAK = (
    "import resource, subprocess, sys, time; started = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measured_run(command: list[str], cwd: object) -> tuple[float, float]:
    """Wall time (s) and peak resident memory (MiB, the largest of it and its children) of a
    command run to completion."""
    import subprocess
    import sys

    output = subprocess.run(  # noqa: S603 - this interpreter, a command of this project
        [sys.executable, "-c", PEAK, *command], cwd=cwd, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    seconds, kib = output.split()
    return float(seconds), int(kib) / 1024
