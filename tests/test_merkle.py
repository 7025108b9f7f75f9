"""The Merkle tree (events.merkle) against RFC 6962's test vectors and an independent reference.

The reference below is written from RFC 6962 section 2.1 (MTH, PATH, SUBPROOF) and RFC 9162
section 2.1.3/2.1.4 (proof verification) and shares no code with the product.
"""

import hashlib
import random
from functools import lru_cache

import pytest

from events import merkle

# Certificate Transparency's reference leaves and tree heads (RFC 6962 test data).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


# The independent reference (RFC 6962 section 2.1, recursively, on the leaf data itself).


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Reference:
    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.leaves = leaf_hashes
        self.mth = lru_cache(maxsize=None)(self._mth)

    @staticmethod
    def k(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return _sha(b"")
        if n == 1:
            return self.leaves[lo]
        k = self.k(n)
        return _sha(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = self.k(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _sha(b"\x01" + p + r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    if first & (first - 1) == 0:  # a power of two
        proof = [first_root, *proof]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = _sha(b"\x01" + c + fr)
            sr = _sha(b"\x01" + c + sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def built_tiles(leaf_hashes: list[bytes]) -> dict:
    """The product's tiles for these leaves, grown in uneven steps as the log grows."""
    tiles: dict = {}
    size, rng = 0, random.Random(7)
    while size < len(leaf_hashes):
        step = rng.randint(1, 40)
        size, _ = merkle.tiles_extend(tiles, size, leaf_hashes[size : size + step])
    return {key: bytes(value) for key, value in tiles.items()}


def test_hashes_are_rfc_6962s():
    leaves = [merkle.leaf_hash(data) for data in CT_LEAVES]
    assert merkle.EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert leaves[0].hex() == CT_ROOTS[1]
    source = merkle.tile_source(built_tiles(leaves))
    for size in range(len(leaves) + 1):
        assert merkle.root(size, source).hex() == CT_ROOTS[size]
    for (index, size), expected in CT_INCLUSION.items():
        assert [h.hex() for h in merkle.inclusion_proof(index, size, source)] == expected
    for (first, second), expected in CT_CONSISTENCY.items():
        assert [h.hex() for h in merkle.consistency_proof(first, second, source)] == expected


def test_reference_agrees_with_the_vectors():
    # So a bug shared by the reference and the product cannot pass unseen.
    ref = Reference([merkle.leaf_hash(data) for data in CT_LEAVES])
    assert [ref.mth(0, n).hex() for n in range(9)] == CT_ROOTS
    assert [h.hex() for h in ref.path(5, 0, 8)] == CT_INCLUSION[(5, 8)]
    assert [h.hex() for h in ref.subproof(6, 0, 8, True)] == CT_CONSISTENCY[(6, 8)]


def test_every_size_and_leaf_up_to_300_matches_the_reference():
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    ref = Reference(leaves)
    source = merkle.tile_source(built_tiles(leaves))
    inclusion = consistency = 0
    for size in range(1, 301):
        expected_root = ref.mth(0, size)
        assert merkle.root(size, source) == expected_root, size
        assert merkle.carry_up(leaves[:size]) == expected_root, size
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, source)
            assert proof == ref.path(index, 0, size), (index, size)
            assert verify_inclusion(index, size, leaves[index], proof, expected_root)
            inclusion += 1
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, size, source)
            assert proof == ref.subproof(first, 0, size, True), (first, size)
            assert verify_consistency(first, size, ref.mth(0, first), expected_root, proof)
            consistency += 1
    assert inclusion == consistency == 300 * 301 // 2


def test_a_tree_of_several_tile_levels_matches_the_reference():
    # 70,000 leaves: three tile levels, partial tiles at each.
    rng = random.Random(11)
    leaves = [rng.randbytes(32) for _ in range(70_000)]
    ref = Reference(leaves)
    tiles = built_tiles(leaves)
    assert {level for level, _ in tiles} == {0, 1, 2}
    source = merkle.tile_source(tiles)
    for size in (65_535, 65_536, 65_537, 69_999, 70_000):
        assert merkle.root(size, source) == ref.mth(0, size)
    for _ in range(40):
        size = rng.randint(1, 70_000)
        index, first = rng.randrange(size), rng.randint(1, size)
        assert merkle.inclusion_proof(index, size, source) == ref.path(index, 0, size)
        assert merkle.consistency_proof(first, size, source) == ref.subproof(first, 0, size, True)


def test_a_proof_reads_a_logarithmic_number_of_stored_hashes():
    size = 70_000
    for index in (0, 12_345, 69_999):
        nodes = {
            n for lo, hi in merkle.inclusion_ranges(index, size) for n in merkle.range_nodes(lo, hi)
        }
        assert len(nodes) <= 2 * size.bit_length()
        assert len(merkle.tiles_needed(nodes)) <= 6


def test_tampered_proofs_do_not_verify():
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(37)]
    source = merkle.tile_source(built_tiles(leaves))
    root = merkle.root(37, source)
    proof = merkle.inclusion_proof(10, 37, source)
    assert verify_inclusion(10, 37, leaves[10], proof, root)
    assert not verify_inclusion(11, 37, leaves[10], proof, root)
    assert not verify_inclusion(10, 37, leaves[10], proof[:-1], root)
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert not verify_inclusion(10, 37, leaves[10], flipped, root)
    consistency = merkle.consistency_proof(13, 37, source)
    old_root = merkle.root(13, source)
    assert verify_consistency(13, 37, old_root, root, consistency)
    assert not verify_consistency(13, 37, merkle.root(12, source), root, consistency)
    assert not verify_consistency(13, 37, old_root, root, consistency[1:])


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (merkle.inclusion_proof, (5, 5)),
        (merkle.inclusion_proof, (-1, 5)),
        (merkle.consistency_proof, (0, 5)),
        (merkle.consistency_proof, (6, 5)),
    ],
)
def test_out_of_range_requests_are_refused(call, args):
    source = merkle.tile_source(built_tiles([merkle.leaf_hash(b"x")] * 5))
    with pytest.raises(merkle.TreeRangeError):
        call(*args, source)


def test_nodes_beyond_the_stored_tree_are_refused():
    source = merkle.tile_source(built_tiles([merkle.leaf_hash(bytes([i])) for i in range(5)]))
    with pytest.raises(merkle.TreeRangeError):
        merkle.root(6, source)


def test_the_products_verifiers_agree_with_the_reference_verifiers():
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
    source = merkle.tile_source(built_tiles(leaves))
    roots = [merkle.root(n, source) for n in range(71)]
    for size in range(1, 71):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, source)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
            assert not merkle.verify_inclusion(index, size, leaves[index], proof, roots[size - 1])
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, size, source)
            assert merkle.verify_consistency(first, size, roots[first], roots[size], proof)
            if proof:
                assert not merkle.verify_consistency(
                    first, size, roots[first], roots[size], proof[:-1]
                )
                assert (
                    verify_consistency(first, size, roots[first], roots[size], proof[:-1]) is False
                )
