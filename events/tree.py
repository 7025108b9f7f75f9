"""The log's Merkle tree in the database: tiles kept up to date from `events`, and roots and
proofs read from them (events.merkle has the algorithms).

The tiles are derived data: `tree_extend` adds the events appended since it last ran, under
a lock, in one transaction; the observer API and checkpoints call it before they read.
`root_from_events` recomputes a root from the `content_hash` column alone, trusting no
stored hash: it is what checkpoint anchors are checked with.
"""

import hashlib
from collections.abc import Iterator, Mapping

from django.db import connection, transaction
from django.db.models import Q

from events import merkle
from events.models import Event, MerkleTile

# pg_advisory_xact_lock key serialising tree extension: "merkle" as a big-endian integer.
TREE_LOCK_KEY = int.from_bytes(b"merkle", "big")
EXTEND_BATCH = 20_000
ROOT_BATCH = 50_000


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
        if not rows or rows[0][0] != after + 1 or rows[-1][0] - after != len(rows):
            raise merkle.TreeRangeError(f"the log has a gap after sequence {after}")
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


def root_from_events(size: int) -> bytes:
    """MTH of the first `size` events, from their `content_hash` column alone, in O(log n)
    memory. On PostgreSQL the leaf hashes are computed by the database (sha256())."""
    tree = merkle.StreamingRoot()
    if connection.vendor == "postgresql":
        after = 0
        with connection.cursor() as cursor:
            while after < size:
                until = min(after + ROOT_BATCH, size)
                cursor.execute(
                    "SELECT sha256('\\x00'::bytea || decode(content_hash, 'hex')) FROM events "
                    "WHERE sequence > %s AND sequence <= %s ORDER BY sequence",
                    [after, until],
                )
                rows = cursor.fetchall()
                if len(rows) != until - after:
                    raise merkle.TreeRangeError(f"the log has a gap after sequence {after}")
                for (digest,) in rows:
                    tree.push_leaf_hash(bytes(digest))
                after = until
    else:
        for content_hashes in _content_hashes(0, size, ROOT_BATCH):
            for digest in _leaf_hashes(content_hashes):
                tree.push_leaf_hash(digest)
    if tree.size != size:
        raise merkle.TreeRangeError(f"tree_size {size} is beyond the log's {tree.size} events")
    return tree.root()


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
