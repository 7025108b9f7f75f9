"""The heap of a long-lived process: what it loads at start, kept out of the garbage
collector's sight."""

import gc


def settle_heap() -> int:
    """Moves every object alive now out of the collector's generations, for a process that has
    loaded what it serves with and keeps it for as long as it lives (a web worker, the
    integrator).

    Such a process keeps well over 100,000 objects from its start. Left in the generations,
    the growth of its first minutes sets off full collections that walk all of them: 70 to
    100 ms each, and in the web workers at the same moment in every worker, since they take
    the same traffic (`orders_load`'s p99 went over 100 ms in the turn where they fell).
    Frozen, a full collection walks only what was made since: a few thousand objects.
    Returns how many objects are settled.
    """
    gc.collect()  # (what is already garbage is freed, not kept for ever)
    gc.freeze()
    return gc.get_freeze_count()
