"""The log's Merkle tree in the database: tiles kept up to date from `events`, and roots and
proofs read from them (events.merkle has the algorithms).

The tiles are derived data: `tree_extend` adds the events appended since it last ran, under
a lock, in one transaction; the observer API and checkpoints call it before they read.
`root_from_events` recomputes a root from the `content_hash` column alone, trusting no
stored hash: it is what checkpoint anchors are checked with.
"""

import hashlib
import multiprocessing
import os
from collections.abc import Iterator, Mapping

import psycopg
from django.db import connection, transaction
from django.db.models import Q
from psycopg.conninfo import make_conninfo

from events import merkle
from events.models import Event, MerkleTile

# pg_advisory_xact_lock key serialising tree extension: "merkle" as a big-endian integer.
TREE_LOCK_KEY = int.from_bytes(b"merkle", "big")
EXTEND_BATCH = 20_000
ROOT_BATCH = 50_000
ROOT_CHUNK_HEIGHT = 16  # 65,536 leaves per chunk of the anchor's recomputation
# Connection settings the anchor's worker processes take over from DATABASES' OPTIONS.
LIBPQ_OPTIONS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name",
     "options", "target_session_attrs", "passfile"}
)  # fmt: skip


def log_size() -> int:
    """The sequence of the last event: the size of the log's tree."""
    return Event.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def stored_size() -> int:
    """How many leaves the stored tiles hold."""
    last = MerkleTile.objects.filter(level=0).order_by("-index").values("index", "hashes").first()
    if last is None:
        return 0
    return last["index"] * merkle.TILE_WIDTH + len(last["hashes"]) // merkle.HASH_SIZE


def _content_hashes(after: int, until: int, batch: int) -> Iterator[list[str]]:
    while after < until:
        rows = list(
            Event.objects.filter(sequence__gt=after, sequence__lte=min(after + batch, until))
            .order_by("sequence")
            .values_list("sequence", "content_hash")
        )
        expected = min(after + batch, until) - after
        if len(rows) != expected or rows[-1][0] != after + expected:
            missing = next(
                (
                    after + 1 + n
                    for n, (sequence, _) in enumerate(rows)
                    if sequence != after + 1 + n
                ),
                after + len(rows) + 1,
            )
            raise merkle.TreeRangeError(f"the log has a gap: event {missing} is missing")
        yield [content_hash for _, content_hash in rows]
        after = rows[-1][0]


def _leaf_hashes(content_hashes: list[str]) -> list[bytes]:
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + bytes.fromhex(h)).digest() for h in content_hashes]


def _load_tiles(keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not keys:
        return {}
    condition = Q()
    for level, index in keys:
        condition |= Q(level=level, index=index)
    return {
        (level, index): bytes(hashes)
        for level, index, hashes in MerkleTile.objects.filter(condition).values_list(
            "level", "index", "hashes"
        )
    }


def tree_extend(to_size: int | None = None) -> int:
    """Brings the stored tree up to `to_size` leaves (default: the whole log); returns the
    stored size. Concurrent callers wait for each other; each event is added once."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TREE_LOCK_KEY])
        size = stored_size()
        target = log_size() if to_size is None else to_size
        if target <= size:
            return size
        tiles = {
            key: bytearray(value) for key, value in _load_tiles(merkle.edge_tiles(size)).items()
        }
        changed: set[tuple[int, int]] = set()
        for content_hashes in _content_hashes(size, target, EXTEND_BATCH):
            size, touched = merkle.tiles_extend(tiles, size, _leaf_hashes(content_hashes))
            changed |= touched
        MerkleTile.objects.bulk_create(
            [
                MerkleTile(level=level, index=index, hashes=bytes(tiles[level, index]))
                for level, index in sorted(changed)
            ],
            update_conflicts=True,
            unique_fields=["level", "index"],
            update_fields=["hashes"],
            batch_size=1000,
        )
        return size


def _check_size(size: int, what: str) -> int:
    """Makes sure the stored tree covers `size` leaves, or says why it cannot."""
    available = stored_size()
    if size > available:
        available = tree_extend()
    if size > available:
        raise merkle.TreeRangeError(f"{what} {size} is beyond the log's {available} events")
    return available


def stored_source(nodes: set[merkle.Node]) -> Mapping[merkle.Node, bytes]:
    """A NodeSource reading the tiles it needs in one query."""
    return merkle.tile_source(_load_tiles(merkle.tiles_needed(nodes)))(nodes)


def tree_root(size: int) -> bytes:
    _check_size(size, "tree_size")
    return merkle.root(size, stored_source)


def tree_inclusion_proof(sequence: int, size: int) -> list[bytes]:
    if not 1 <= sequence <= size:
        raise merkle.TreeRangeError(f"sequence {sequence} is not in a tree of size {size}")
    _check_size(size, "tree_size")
    return merkle.inclusion_proof(sequence - 1, size, stored_source)


def tree_consistency_proof(first: int, second: int) -> list[bytes]:
    if not 1 <= first <= second:
        raise merkle.TreeRangeError(
            f"first must be at least 1 and at most second (got {first} and {second})"
        )
    _check_size(second, "second")
    return merkle.consistency_proof(first, second, stored_source)


def _chunk_root_in_child(bounds: tuple[int, int]) -> bytes:
    """The subtree root of leaves [lo, hi), read over a connection of the child's own (the
    parent's stays untouched)."""
    lo, hi = bounds
    with psycopg.connect(_conninfo) as own:
        # The digests' bytes, in binary: no hex to parse on either side.
        rows = own.execute(
            "SELECT decode(content_hash, 'hex') FROM events "
            "WHERE sequence > %s AND sequence <= %s ORDER BY sequence",
            [lo, hi],
            binary=True,
        ).fetchall()
    if len(rows) != hi - lo:
        raise merkle.TreeRangeError(f"the log has a gap between events {lo + 1} and {hi}")
    sha256 = hashlib.sha256
    return merkle.carry_up([sha256(b"\x00" + digest).digest() for (digest,) in rows])


_conninfo = ""


def root_from_events(size: int, *, workers: int | None = None) -> bytes:
    """MTH of the first `size` events, from their `content_hash` column alone (no stored
    hash is trusted). A long log is cut into aligned chunks of 2**ROOT_CHUNK_HEIGHT leaves
    hashed on every core, each child reading its chunk over its own connection; the parent
    carries the chunk roots up to the root."""
    global _conninfo
    if size == 0:
        return merkle.EMPTY_ROOT
    chunk = 1 << ROOT_CHUNK_HEIGHT
    bounds = [(lo, min(lo + chunk, size)) for lo in range(0, size, chunk)]
    workers = workers or os.cpu_count() or 1
    if connection.vendor != "postgresql" or workers == 1 or len(bounds) < 2 * workers:
        roots = [
            merkle.carry_up(
                _leaf_hashes([h for batch in _content_hashes(lo, hi, ROOT_BATCH) for h in batch])
            )
            for lo, hi in bounds
        ]
        return merkle.carry_up(roots)
    database = connection.settings_dict
    _conninfo = make_conninfo(
        dbname=database["NAME"],
        user=database["USER"] or None,
        password=database["PASSWORD"] or None,
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        **{k: v for k, v in database["OPTIONS"].items() if k in LIBPQ_OPTIONS},
    )
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return merkle.carry_up(pool.map(_chunk_root_in_child, bounds))


def first_divergent_sequence(size: int) -> int | None:
    """The first of the first `size` events whose `content_hash` no longer matches the leaf
    the stored tree recorded for it (None if none does, or the tiles do not reach it)."""
    stored = min(size, stored_size())
    after = 0
    for content_hashes in _content_hashes(0, stored, merkle.TILE_WIDTH * 64):
        first_tile = after // merkle.TILE_WIDTH
        tiles = _load_tiles(
            {(0, first_tile + i) for i in range(-(-len(content_hashes) // merkle.TILE_WIDTH))}
        )
        for offset, digest in enumerate(_leaf_hashes(content_hashes)):
            position = after + offset
            tile = tiles.get((0, position // merkle.TILE_WIDTH), b"")
            start = (position % merkle.TILE_WIDTH) * merkle.HASH_SIZE
            if tile[start : start + merkle.HASH_SIZE] != digest:
                return position + 1
        after += len(content_hashes)
    return None
