//! Inclusion and consistency proofs (RFC 9162 §2.1.3.1 and §2.1.4.1),
//! assembled from stored hashes.
//!
//! Each proof element is the hash of a range of leaves that the RFC's
//! recursive split produces. Such a range is either one complete subtree
//! (one stored hash) or the right edge of the tree (at most `log2(n)` stored
//! hashes); a proof has at most one right-edge element, so it reads
//! `O(log n)` stored hashes, all in one call.

use super::err::TreeError;
use super::hash::Hash;
use super::stored::{HashPlan, HashReader, check_size};

/// Largest power of two strictly below `n` (`n >= 2`): the RFC's split point.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The ranges of PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), deepest first.
fn inclusion_ranges(m: u64, lo: u64, hi: u64, out: &mut HashPlan) {
    if hi - lo <= 1 {
        return;
    }
    let k = split(hi - lo);
    if m < lo + k {
        inclusion_ranges(m, lo, lo + k, out);
        out.push_range(lo + k, hi);
    } else {
        inclusion_ranges(m, lo + k, hi, out);
        out.push_range(lo, lo + k);
    }
}

/// The ranges of SUBPROOF(m, D[lo:hi], b) (RFC 9162 §2.1.4.1), deepest first.
fn consistency_ranges(m: u64, lo: u64, hi: u64, whole: bool, out: &mut HashPlan) {
    if m == hi {
        if !whole {
            out.push_range(lo, hi);
        }
        return;
    }
    let k = split(hi - lo);
    if m <= lo + k {
        consistency_ranges(m, lo, lo + k, whole, out);
        out.push_range(lo + k, hi);
    } else {
        consistency_ranges(m, lo + k, hi, false, out);
        out.push_range(lo, lo + k);
    }
}

/// Plans the inclusion proof (audit path) of leaf `index` in the tree of
/// `size` leaves. Fails unless `index < size`.
pub fn inclusion_proof_plan(index: u64, size: u64) -> Result<HashPlan, TreeError> {
    check_size(size)?;
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let mut plan = HashPlan::new();
    inclusion_ranges(index, 0, size, &mut plan);
    Ok(plan)
}

/// Plans the consistency proof from the tree of `old` leaves to the tree of
/// `new` leaves. The proof is empty when `old == new` or `old == 0` (every
/// tree is consistent with itself and extends the empty tree).
pub fn consistency_proof_plan(old: u64, new: u64) -> Result<HashPlan, TreeError> {
    check_size(new)?;
    if old > new {
        return Err(TreeError::SizesOutOfOrder { old, new });
    }
    let mut plan = HashPlan::new();
    if old > 0 && old < new {
        consistency_ranges(old, 0, new, true, &mut plan);
    }
    Ok(plan)
}

/// The RFC 9162 §2.1.3.1 inclusion proof of leaf `index` (0-based) in the
/// tree of `size` leaves: the sibling hashes from the leaf up to the root.
/// Reads `O(log size)` stored hashes in one call.
pub fn prove_inclusion<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    inclusion_proof_plan(index, size)?.read(reader)
}

/// The RFC 9162 §2.1.4.1 consistency proof from the tree of `old` leaves to
/// the tree of `new` leaves. Reads `O(log new)` stored hashes in one call.
pub fn prove_consistency<R: HashReader + ?Sized>(
    old: u64,
    new: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    consistency_proof_plan(old, new)?.read(reader)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tlog::hash::{leaf_hash, node_hash};
    use crate::tlog::stored::tests::MemoryHashes;

    /// MTH straight from the RFC's definition, over leaf hashes.
    pub(crate) fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => crate::tlog::EMPTY_TREE_HASH,
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// PATH(m, D[n]) straight from the RFC.
    fn reference_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n as u64) as usize;
        if m < k {
            let mut p = reference_path(m, &leaves[..k]);
            p.push(reference_root(&leaves[k..]));
            p
        } else {
            let mut p = reference_path(m - k, &leaves[k..]);
            p.push(reference_root(&leaves[..k]));
            p
        }
    }

    /// SUBPROOF(m, D[n], b) straight from the RFC.
    fn reference_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole {
                Vec::new()
            } else {
                vec![reference_root(leaves)]
            };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = reference_subproof(m, &leaves[..k], whole);
            p.push(reference_root(&leaves[k..]));
            p
        } else {
            let mut p = reference_subproof(m - k, &leaves[k..], false);
            p.push(reference_root(&leaves[..k]));
            p
        }
    }

    fn data(i: u64) -> Vec<u8> {
        format!("leaf {i}").into_bytes()
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
        assert_eq!(split((1 << 62) + 1), 1 << 62);
    }

    #[test]
    fn stored_proofs_equal_the_rfc_definitions_up_to_64_leaves() {
        let all: Vec<Vec<u8>> = (0..64).map(data).collect();
        let hashes: Vec<Hash> = all.iter().map(|d| leaf_hash(d)).collect();
        let store = MemoryHashes::with_leaves(&all);
        for n in 1..=64usize {
            let leaves = &hashes[..n];
            assert_eq!(
                crate::tlog::tree_hash(n as u64, &store).unwrap(),
                reference_root(leaves)
            );
            for m in 0..n {
                let proof = prove_inclusion(m as u64, n as u64, &store).unwrap();
                assert_eq!(proof, reference_path(m, leaves), "PATH({m}, {n})");
            }
            for m in 1..n {
                let proof = prove_consistency(m as u64, n as u64, &store).unwrap();
                assert_eq!(
                    proof,
                    reference_subproof(m, leaves, true),
                    "PROOF({m}, {n})"
                );
            }
            assert!(
                prove_consistency(n as u64, n as u64, &store)
                    .unwrap()
                    .is_empty()
            );
            assert!(prove_consistency(0, n as u64, &store).unwrap().is_empty());
        }
    }

    #[test]
    fn proofs_read_o_log_n_hashes_in_one_call() {
        let n = 3000u64;
        let store = MemoryHashes::with_leaves(&(0..n).map(data).collect::<Vec<_>>());
        let log = 64 - n.leading_zeros() as usize; // 12
        for size in [1u64, 2, 3, 1000, 1023, 1024, 1025, 2047, 2999, 3000] {
            for index in [0, 1, size / 2, size.saturating_sub(2), size - 1] {
                if index >= size {
                    continue;
                }
                store.reset_counts();
                prove_inclusion(index, size, &store).unwrap();
                assert!(store.reads.get() <= 2 * log, "inclusion {index}/{size}");
                assert!(store.calls.get() <= 1);
                store.reset_counts();
                prove_consistency(index, size, &store).unwrap();
                assert!(store.reads.get() <= 2 * log, "consistency {index}/{size}");
                assert!(store.calls.get() <= 1);
            }
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let store = MemoryHashes::with_leaves(&[data(0), data(1)]);
        assert!(matches!(
            prove_inclusion(2, 2, &store),
            Err(TreeError::IndexOutOfRange { index: 2, size: 2 })
        ));
        assert!(matches!(
            prove_inclusion(0, 0, &store),
            Err(TreeError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            prove_consistency(3, 2, &store),
            Err(TreeError::SizesOutOfOrder { old: 3, new: 2 })
        ));
        assert!(matches!(
            prove_inclusion(0, 3, &store),
            Err(TreeError::Read(_))
        ));
        assert!(matches!(
            inclusion_proof_plan(0, crate::tlog::MAX_TREE_SIZE + 1),
            Err(TreeError::TreeTooLarge { .. })
        ));
    }

    #[test]
    fn a_proof_at_the_largest_size_is_planned_without_overflow() {
        let size = crate::tlog::MAX_TREE_SIZE;
        let plan = inclusion_proof_plan(size - 1, size).unwrap();
        assert_eq!(plan.indexes().len(), 62);
        let plan = consistency_proof_plan(size - 1, size).unwrap();
        assert!(plan.indexes().len() <= 2 * 62);
    }
}
