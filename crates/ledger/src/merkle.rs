//! RFC 6962 Merkle tree over BLAKE3, with inclusion and consistency proofs.
//!
//! Hashes follow RFC 6962 §2.1 with BLAKE3-256 in place of SHA-256:
//! `leaf = H(0x00 ‖ data)`, `node = H(0x01 ‖ left ‖ right)`, `MTH({}) = H("")`, and a tree of `n`
//! leaves splits at `k`, the largest power of two smaller than `n`. Proofs are generated as in
//! RFC 6962 §2.1.1/§2.1.2 and verified with the algorithms of RFC 9162 §2.1.3.2/§2.1.4.2.
//!
//! The tree keeps only leaf hashes and the roots of complete, aligned subtrees of `2^4` leaves
//! and more (about `1.13 n` hashes: a replica's log is most of a long simulation's memory, and
//! every validator holds one); a smaller subtree is rehashed from at most 16 leaves when a proof
//! or root needs it. So any subtree hash costs `O(log n)` plus at most 15 hashes, a proof
//! `O(log² n)`, and the whole tree is rebuilt from stored leaf hashes alone.

use orchestra_protocol::Hash32;

/// Domain-separation prefix of leaf hashes.
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes.
const NODE_PREFIX: u8 = 0x01;

/// `H(0x00 ‖ data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut h = blake3::Hasher::new();
    h.update(&[LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `H(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = blake3::Hasher::new();
    h.update(&[NODE_PREFIX]);
    h.update(&left.0);
    h.update(&right.0);
    h.finalize().into()
}

/// `MTH({})`: the root of the empty tree, the hash of the empty string.
pub fn empty_root() -> Hash32 {
    blake3::hash(b"").into()
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    let mut k = 1u64;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A requested index or size lies outside the tree.
    #[error("out of range: {0}")]
    OutOfRange(&'static str),
    /// The proof does not lead to the expected root(s).
    #[error("proof does not verify: {0}")]
    Mismatch(&'static str),
}

/// Levels `1..STORED_FROM` are left empty (see the module docs).
const STORED_FROM: usize = 4;

/// An append-only Merkle tree that stores leaf hashes and complete subtree roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[h][i]` is the root of the complete subtree of `2^h` leaves starting at `i · 2^h`,
    /// for `h = 0` (the leaf hashes) and `h >= STORED_FROM`; the levels between stay empty.
    levels: Vec<Vec<Hash32>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        MerkleTree { levels: Vec::new() }
    }

    /// A tree over the given leaf hashes, in order.
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash32>) -> Self {
        let mut t = MerkleTree::new();
        for l in leaves {
            t.push(l);
        }
        t
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf hash at `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash32> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// Append one leaf hash, completing every subtree it closes.
    pub fn push(&mut self, leaf: Hash32) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let leaves = &mut self.levels[0];
        if leaves.len() == leaves.capacity() {
            // Grow by a quarter rather than doubling: a long log is mostly leaf hashes.
            leaves.reserve_exact((leaves.len() / 4).max(64));
        }
        leaves.push(leaf);
        let n = leaves.len() as u64;
        let first = 1u64 << STORED_FROM;
        if !n.is_multiple_of(first) {
            return;
        }
        // The levels below are not stored, so this rehashes the last `first` leaves.
        let node = self.subtree(n - first, first);
        while self.levels.len() <= STORED_FROM {
            self.levels.push(Vec::new());
        }
        self.levels[STORED_FROM].push(node);
        let mut h = STORED_FROM;
        // A level's length became even: its last two nodes form a new complete parent.
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
    }

    /// Drop every leaf from `size` on (used to undo an append whose storage failed).
    pub fn truncate(&mut self, size: u64) {
        if size >= self.size() {
            return;
        }
        // Level h keeps the complete subtrees that lie inside the prefix: indices < size >> h.
        for (h, level) in self.levels.iter_mut().enumerate() {
            level.truncate((size >> h) as usize);
        }
        while self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }

    /// The root of the first `size` leaves (`MTH(D[0:size])`).
    pub fn root_at(&self, size: u64) -> Result<Hash32, ProofError> {
        if size > self.size() {
            return Err(ProofError::OutOfRange("tree size beyond the log"));
        }
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.subtree(0, size))
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash32 {
        if self.size() == 0 {
            empty_root()
        } else {
            self.subtree(0, self.size())
        }
    }

    /// `MTH(D[start:start+len])` for `len >= 1`. RFC 6962's recursion only ever asks for ranges
    /// whose left parts are complete aligned subtrees, which are looked up, not recomputed.
    fn subtree(&self, start: u64, len: u64) -> Hash32 {
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let h = len.trailing_zeros() as usize;
            if let Some(x) = self
                .levels
                .get(h)
                .and_then(|l| l.get((start / len) as usize))
            {
                return *x;
            }
        }
        if len == 1 {
            // Unreachable for in-range leaves (level 0 holds them all); keep a total function.
            return self.levels[0][start as usize];
        }
        let k = split_point(len);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, len - k))
    }

    /// Audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 §2.1.1),
    /// ordered from the leaf up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, ProofError> {
        if size > self.size() {
            return Err(ProofError::OutOfRange("tree size beyond the log"));
        }
        if index >= size {
            return Err(ProofError::OutOfRange("leaf index not below tree size"));
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out);
        Ok(out)
    }

    /// `PATH(m, D[start:start+n])`, appending leaf-to-root.
    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash32>) {
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// Consistency proof between the trees of the first `old` and first `new` leaves
    /// (RFC 6962 §2.1.2). Empty when `old == new` or `old == 0`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash32>, ProofError> {
        if new > self.size() {
            return Err(ProofError::OutOfRange("tree size beyond the log"));
        }
        if old > new {
            return Err(ProofError::OutOfRange("old size larger than new size"));
        }
        let mut out = Vec::new();
        if old == 0 || old == new {
            return Ok(out);
        }
        self.subproof(old, 0, new, true, &mut out);
        Ok(out)
    }

    /// `SUBPROOF(m, D[start:start+n], b)`.
    fn subproof(&self, m: u64, start: u64, n: u64, b: bool, out: &mut Vec<Hash32>) {
        if m == n {
            if !b {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, k, b, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

/// Verify an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash32,
    proof: &[Hash32],
    root: &Hash32,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange("leaf index not below tree size"));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Mismatch("inclusion proof too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Mismatch("inclusion proof too short"));
    }
    if r != *root {
        return Err(ProofError::Mismatch(
            "inclusion proof leads to a different root",
        ));
    }
    Ok(())
}

/// Verify a consistency proof between an old and a new tree head (RFC 9162 §2.1.4.2).
///
/// Every tree extends the empty tree, so `old_size == 0` verifies with an empty proof when
/// `old_root` is the empty root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash32,
    new_root: &Hash32,
    proof: &[Hash32],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OutOfRange("old size larger than new size"));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::Mismatch(
                "proof between equal sizes must be empty",
            ));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch("equal sizes with different roots"))
        };
    }
    if old_size == 0 {
        return if proof.is_empty() && *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::Mismatch("bad proof from the empty tree"))
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Mismatch("empty consistency proof"));
    }
    let mut path: Vec<Hash32> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::Mismatch("consistency proof too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Mismatch("consistency proof too short"));
    }
    if fr != *old_root {
        return Err(ProofError::Mismatch(
            "consistency proof does not match the old root",
        ));
    }
    if sr != *new_root {
        return Err(ProofError::Mismatch(
            "consistency proof does not match the new root",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash32> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// The RFC's MTH, written out naïvely, as an oracle for the cached tree.
    fn mth(d: &[Hash32]) -> Hash32 {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_naive_definition() {
        for n in 0..40u64 {
            let l = leaves(n);
            let t = MerkleTree::from_leaf_hashes(l.clone());
            assert_eq!(t.root(), mth(&l), "n={n}");
            for m in 0..=n {
                assert_eq!(t.root_at(m).unwrap(), mth(&l[..m as usize]));
            }
        }
    }

    #[test]
    fn all_proofs_verify_and_tampering_fails() {
        let t = MerkleTree::from_leaf_hashes(leaves(33));
        for n in 1..=33u64 {
            let root = t.root_at(n).unwrap();
            for i in 0..n {
                let p = t.inclusion_proof(i, n).unwrap();
                verify_inclusion(i, n, &t.leaf(i).unwrap(), &p, &root).unwrap();
                let wrong = leaf_hash(b"tampered");
                assert!(verify_inclusion(i, n, &wrong, &p, &root).is_err());
                if n > 1 {
                    assert!(
                        verify_inclusion((i + 1) % n, n, &t.leaf(i).unwrap(), &p, &root).is_err()
                    );
                }
            }
            for m in 0..=n {
                let p = t.consistency_proof(m, n).unwrap();
                let old = t.root_at(m).unwrap();
                verify_consistency(m, n, &old, &root, &p).unwrap();
                if m > 0 && m < n {
                    assert!(verify_consistency(m, n, &leaf_hash(b"x"), &root, &p).is_err());
                }
            }
        }
    }

    /// Past the stored levels: roots, proofs and truncation on trees of a few hundred leaves.
    #[test]
    fn larger_trees_match_the_naive_definition() {
        let l = leaves(300);
        let mut t = MerkleTree::from_leaf_hashes(l.clone());
        for n in [
            1u64, 15, 16, 17, 31, 32, 33, 64, 127, 128, 129, 255, 256, 257, 300,
        ] {
            let root = t.root_at(n).unwrap();
            assert_eq!(root, mth(&l[..n as usize]), "n={n}");
            for i in [0, n / 3, n / 2, n - 1] {
                let p = t.inclusion_proof(i, n).unwrap();
                verify_inclusion(i, n, &l[i as usize], &p, &root).unwrap();
            }
            for m in [1, n / 2, n - 1] {
                if m > 0 {
                    let p = t.consistency_proof(m, n).unwrap();
                    verify_consistency(m, n, &t.root_at(m).unwrap(), &root, &p).unwrap();
                }
            }
        }
        for n in [299u64, 256, 200, 17, 16, 15, 0] {
            t.truncate(n);
            assert_eq!(
                t,
                MerkleTree::from_leaf_hashes(l[..n as usize].to_vec()),
                "n={n}"
            );
            assert_eq!(t.root(), mth(&l[..n as usize]));
        }
        for &x in &l {
            t.push(x);
        }
        assert_eq!(t, MerkleTree::from_leaf_hashes(l));
    }

    #[test]
    fn truncate_rebuilds_the_prefix() {
        let mut t = MerkleTree::from_leaf_hashes(leaves(20));
        for n in (0..20).rev() {
            t.truncate(n);
            assert_eq!(t, MerkleTree::from_leaf_hashes(leaves(n)), "n={n}");
        }
    }
}
