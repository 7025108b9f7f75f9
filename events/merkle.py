"""The RFC 6962 / RFC 9162 Merkle tree over the log (SPEC 3.6), as pure functions.

Leaf i (0-based) is event sequence i + 1; its hash is SHA-256(0x00 || the 32 bytes of the
event's `content_hash`); a node's hash is SHA-256(0x01 || left || right). The tree of size n
splits at k, the largest power of two below n (RFC 6962 section 2.1).

A node is `(level, index)`: the complete subtree over leaves [index << level,
(index + 1) << level). Proofs are planned as lists of leaf ranges, each range's hash being the
right fold of the complete subtrees that tile it, so whatever holds complete-subtree hashes
(`NodeSource`) can answer for any tree size with O(log n) of them.

The hashes are kept as tiles (after Russ Cox's transparency-log tiles): tile (L, t) holds the
hashes of nodes at tree level `TILE_HEIGHT * L`, indexes [t * TILE_WIDTH, (t + 1) * TILE_WIDTH),
packed 32 bytes each; a level-L tile entry is the root of a full tile of level L - 1. Any
complete node is computed from at most TILE_WIDTH / 2 hashes of one tile.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
Range = tuple[int, int]
# Given complete nodes, their hashes.
NodeSource = Callable[[set[Node]], Mapping[Node, bytes]]


class TreeRangeError(ValueError):
    """A size, index or pair outside what the tree holds."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[Node]:
    """The complete subtrees that make up the RFC 6962 subtree over leaves [lo, hi), left to
    right. Every range the tree's recursion produces starts at a multiple of the largest
    power of two not above its size, so the subtrees follow the binary digits of hi - lo."""
    nodes, position = [], lo
    for level in reversed(range((hi - lo).bit_length())):
        if (hi - lo) >> level & 1:
            if position % (1 << level):
                raise ValueError(f"[{lo}, {hi}) is not a subtree of the tree")
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def fold(hashes: list[bytes]) -> bytes:
    """The hash of a subtree from its complete subtrees, left to right (largest first)."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[0:size]) of RFC 6962 section 2.1.1, as leaf ranges, leaf level first."""
    ranges, lo, hi = [], 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """PROOF(first, D[0:second]) = SUBPROOF(first, D[0:second], true) of RFC 6962 section
    2.1.2, as leaf ranges, deepest first."""
    ranges, lo, hi, m, complete = [], 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            return ranges[::-1]
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False


def _range_hashes(ranges: list[Range], source: NodeSource) -> list[bytes]:
    planned = [range_nodes(lo, hi) for lo, hi in ranges]
    known = source({node for nodes in planned for node in nodes})
    return [fold([known[node] for node in nodes]) for nodes in planned]


def root(size: int, source: NodeSource) -> bytes:
    """MTH(D[0:size])."""
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], source)[0]


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    if not 0 <= index < size:
        raise TreeRangeError(f"leaf index {index} is not in a tree of size {size}")
    return _range_hashes(inclusion_ranges(index, size), source)


def consistency_proof(first: int, second: int, source: NodeSource) -> list[bytes]:
    if not 1 <= first <= second:
        raise TreeRangeError(f"no consistency proof from size {first} to size {second}")
    return _range_hashes(consistency_ranges(first, second), source)


# Tiles.


class TileSlot(NamedTuple):
    """Where a complete node's hash comes from: `width` consecutive hashes of one tile,
    starting at `offset`, folded pairwise into one (width 1: the hash itself)."""

    tile: tuple[int, int]
    offset: int
    width: int


def tile_slot(node: Node) -> TileSlot:
    level, index = node
    tile_level, height = divmod(level, TILE_HEIGHT)
    first = index << height
    return TileSlot((tile_level, first >> TILE_HEIGHT), first % TILE_WIDTH, 1 << height)


def _perfect_root(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def node_from_tile(tile: bytes, slot: TileSlot) -> bytes:
    start, end = slot.offset * HASH_SIZE, (slot.offset + slot.width) * HASH_SIZE
    if len(tile) < end:
        raise TreeRangeError("that subtree is not complete in the stored tree")
    return _perfect_root([tile[i : i + HASH_SIZE] for i in range(start, end, HASH_SIZE)])


def tile_source(tiles: Mapping[tuple[int, int], bytes]) -> NodeSource:
    """A NodeSource over tiles already in hand (`tiles_needed` says which); each node is
    computed once."""

    computed: dict[Node, bytes] = {}

    def source(nodes: set[Node]) -> dict[Node, bytes]:
        for node in nodes - computed.keys():
            slot = tile_slot(node)
            tile = tiles.get(slot.tile)
            if tile is None:
                raise TreeRangeError(f"node {node} is beyond the stored tree")
            computed[node] = node_from_tile(tile, slot)
        return computed

    return source


def tiles_needed(nodes: Iterable[Node]) -> set[tuple[int, int]]:
    return {tile_slot(node).tile for node in nodes}


def edge_tiles(size: int) -> set[tuple[int, int]]:
    """The rightmost tile of every level of a tree of `size` leaves: the ones that grow."""
    tiles, position, level = set(), size, 0
    while True:
        tiles.add((level, position >> TILE_HEIGHT))
        position >>= TILE_HEIGHT
        if position == 0:
            return tiles
        level += 1


def tiles_extend(
    tiles: dict[tuple[int, int], bytearray], size: int, leaf_hashes: Iterable[bytes]
) -> tuple[int, set[tuple[int, int]]]:
    """Appends leaves to a tree of `size` leaves whose edge tiles are in `tiles` (updated in
    place); returns the new size and the tiles that changed."""
    changed: set[tuple[int, int]] = set()
    for digest in leaf_hashes:
        position, level = size, 0
        while True:
            key = (level, position >> TILE_HEIGHT)
            tile = tiles.setdefault(key, bytearray())
            if len(tile) != (position % TILE_WIDTH) * HASH_SIZE:
                raise ValueError(f"tile {key} does not end where the tree does")
            tile += digest
            changed.add(key)
            if position % TILE_WIDTH != TILE_WIDTH - 1:
                break
            # The tile is full: its root is the next level's entry.
            digest = _perfect_root(
                [bytes(tile[i : i + HASH_SIZE]) for i in range(0, len(tile), HASH_SIZE)]
            )
            position, level = position >> TILE_HEIGHT, level + 1
        size += 1
    return size, changed


def carry_up(level: list[bytes]) -> bytes:
    """The root over nodes of one level, left to right: each pair is hashed and a lone last
    node is carried up as it is. That is RFC 6962's tree (its split at the largest power of
    two gives the same nodes) when every node but the last is complete: over leaf hashes, the
    MTH itself."""
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        carried = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            carried.append(level[-1])
        level = carried
    return level[0]


# Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2).


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: list[bytes], expected_root: bytes
) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            result = node_hash(sibling, result)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    if not 1 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root, *proof]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root
