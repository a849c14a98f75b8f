//! Stored subtree hashes: the numbering a backend keys them by, the hashes
//! to store at each append, and tree hashes read back from them.
//!
//! # The numbering
//! A complete subtree at `level` L with `index` i covers leaves
//! `[i * 2^L, (i + 1) * 2^L)`. It becomes complete when leaf
//! `n = (i + 1) * 2^L - 1` is appended, and that append stores, in this
//! order, the leaf hash (level 0) and then the subtrees at levels
//! `1..=t` that `n` completes, where `t` is the number of trailing one bits
//! of `n`. The stored hashes of all leaves before `n` number
//! `2n - popcount(n)` (each leaf `m` stores `1 + trailing_ones(m)` hashes,
//! and these sum to `2n - popcount(n)`), so subtree `(L, i)` gets
//!
//! ```text
//! stored_index(L, i) = 2n - popcount(n) + L,   n = (i + 1) * 2^L - 1
//! ```
//!
//! Indexes are dense (0, 1, 2, ... with no gaps), only ever appended, and
//! independent of the tree size: a backend keeps one table
//! `(workspace, index) -> hash`.

use super::err::TreeError;
use super::hash::{Hash, fold_subtrees, leaf_hash, node_hash};

/// Largest tree size (number of leaves) supported: 2^62, so that every
/// stored-hash index fits in a `u64` with room to spare.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// A complete subtree: `2^level` leaves starting at leaf `index * 2^level`.
/// Level 0 subtrees are single leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subtree {
    /// Height of the subtree: it covers `2^level` leaves.
    pub level: u32,
    /// Position among the subtrees of the same level, from 0 at the left.
    pub index: u64,
}

impl Subtree {
    /// The stored-hash index of this subtree (see the module docs for the
    /// formula). Fails if the subtree reaches past [`MAX_TREE_SIZE`] leaves.
    pub fn stored_index(self) -> Result<u64, TreeError> {
        // The number of leaves a tree needs to contain this subtree.
        let end = self
            .index
            .checked_add(1)
            .and_then(|i| i.checked_mul(1u64.checked_shl(self.level)?))
            .unwrap_or(u64::MAX);
        check_size(end)?;
        Ok(stored_hash_count(end - 1) + u64::from(self.level))
    }

    /// The subtree stored at `stored_index`: the inverse of [`Self::stored_index`].
    pub fn from_stored_index(stored_index: u64) -> Result<Self, TreeError> {
        // stored_hash_count(n) lies in [n, 2n], so the leaf whose append wrote
        // this index is at least stored_index / 2 and at most 64 steps above it
        // (each leaf adds at least one stored hash).
        if stored_index >= stored_hash_count(MAX_TREE_SIZE) {
            return Err(TreeError::BadStoredIndex {
                index: stored_index,
            });
        }
        let mut n = stored_index / 2;
        while stored_hash_count(n + 1) <= stored_index {
            n += 1;
        }
        // INVARIANT: stored_hash_count(n) <= stored_index < stored_hash_count(n + 1),
        // so the level is at most trailing_ones(n).
        let level = u32::try_from(stored_index - stored_hash_count(n)).map_err(|_| {
            TreeError::BadStoredIndex {
                index: stored_index,
            }
        })?;
        Ok(Self {
            level,
            index: ((n + 1) >> level) - 1,
        })
    }

    /// First leaf covered.
    fn start(self) -> u64 {
        self.index << self.level
    }

    /// Same as [`Self::stored_index`] for subtrees of trees already checked
    /// against [`MAX_TREE_SIZE`].
    fn stored_index_in_range(self) -> u64 {
        let last_leaf = self.start() + (1u64 << self.level) - 1;
        stored_hash_count(last_leaf) + u64::from(self.level)
    }
}

/// Number of hashes stored for a tree of `size` leaves: `2 * size - popcount(size)`.
///
/// The hashes stored when appending leaf `n` therefore have the indexes
/// `stored_hash_count(n) .. stored_hash_count(n + 1)`.
pub fn stored_hash_count(size: u64) -> u64 {
    // Callers keep size <= MAX_TREE_SIZE, so 2 * size cannot overflow.
    2 * size - u64::from(size.count_ones())
}

pub(crate) fn check_size(size: u64) -> Result<(), TreeError> {
    if size > MAX_TREE_SIZE {
        return Err(TreeError::TreeTooLarge { size });
    }
    Ok(())
}

/// Reads stored hashes by index. One call per operation, so a database
/// backend answers a whole proof with one query.
pub trait HashReader {
    /// The backend's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The hashes stored at `indexes`, in the same order (an index may repeat).
    /// Must fail rather than return fewer hashes when one is missing.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error>;
}

fn read_all<R: HashReader + ?Sized>(reader: &R, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader
        .read_hashes(indexes)
        .map_err(|e| TreeError::Read(Box::new(e)))?;
    check_count(indexes.len(), hashes.len())?;
    Ok(hashes)
}

fn check_count(expected: usize, got: usize) -> Result<(), TreeError> {
    if expected != got {
        return Err(TreeError::HashCount { expected, got });
    }
    Ok(())
}

/// The stored hashes an append needs read before it can compute its own.
///
/// Use [`Self::indexes`], read those hashes, then [`Self::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPlan {
    leaf: Hash,
    /// Left siblings at levels 0, 1, ...: each one's right neighbour is the
    /// subtree the new leaf has just completed at that level.
    siblings: Vec<u64>,
    first_index: u64,
}

impl AppendPlan {
    /// Stored-hash indexes to read: at most `log2(n) + 1`, one per level completed.
    pub fn indexes(&self) -> &[u64] {
        &self.siblings
    }

    /// Stored-hash index of the first hash [`Self::finish`] returns; the
    /// others follow it consecutively.
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    /// The hashes to store for this leaf, in stored-index order: the leaf
    /// hash, then each subtree the leaf completes, lowest level first.
    /// `hashes` are the stored hashes at [`Self::indexes`], in that order.
    pub fn finish(&self, hashes: &[Hash]) -> Result<Vec<Hash>, TreeError> {
        check_count(self.siblings.len(), hashes.len())?;
        let mut out = Vec::with_capacity(hashes.len() + 1);
        let mut current = self.leaf;
        out.push(current);
        for left in hashes {
            current = node_hash(left, &current);
            out.push(current);
        }
        Ok(out)
    }
}

/// Plans the append of leaf number `n` (0-based: the tree had `n` leaves)
/// whose leaf hash is `leaf`.
pub fn hashes_to_store_plan(n: u64, leaf: Hash) -> Result<AppendPlan, TreeError> {
    check_size(n.saturating_add(1))?;
    let completed = n.trailing_ones();
    let siblings = (0..completed)
        .map(|level| {
            // The subtree at `level` ending with leaf n is ((n + 1) >> level) - 1;
            // its left sibling is the one before it.
            Subtree {
                level,
                index: ((n + 1) >> level) - 2,
            }
            .stored_index_in_range()
        })
        .collect();
    Ok(AppendPlan {
        leaf,
        siblings,
        first_index: stored_hash_count(n),
    })
}

/// The hashes to store when appending leaf number `n` (0-based) with
/// `leaf_data`: see [`AppendPlan::finish`]. Reads at most `log2(n) + 1`
/// stored hashes, in one call.
pub fn hashes_to_store<R: HashReader + ?Sized>(
    n: u64,
    leaf_data: &[u8],
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    let plan = hashes_to_store_plan(n, leaf_hash(leaf_data))?;
    let hashes = read_all(reader, plan.indexes())?;
    plan.finish(&hashes)
}

/// A list of hashes to compute from stored hashes. Each output hash is the
/// hash of a range of leaves, made from a run of consecutive read hashes
/// `s0, s1, ..., sk` (the range's complete subtrees, largest first) as
/// `node(s0, node(s1, ... node(s[k-1], sk)))`.
///
/// Use [`Self::indexes`], read those hashes, then [`Self::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashPlan {
    indexes: Vec<u64>,
    /// How many consecutive entries of `indexes` make each output hash.
    groups: Vec<usize>,
}

impl HashPlan {
    pub(crate) fn new() -> Self {
        Self {
            indexes: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Adds one output hash: the RFC 9162 hash of leaves `[start, end)`,
    /// a range whose start is a multiple of the power of two at or above
    /// its length (every range of the RFC's recursive split is).
    pub(crate) fn push_range(&mut self, mut start: u64, end: u64) {
        let before = self.indexes.len();
        while start < end {
            // The largest aligned complete subtree starting at `start` that fits.
            let fits = 63 - (end - start).leading_zeros();
            let level = start.trailing_zeros().min(fits);
            let subtree = Subtree {
                level,
                index: start >> level,
            };
            self.indexes.push(subtree.stored_index_in_range());
            start += 1 << level;
        }
        self.groups.push(self.indexes.len() - before);
    }

    /// Stored-hash indexes to read, `O(log n)` of them.
    pub fn indexes(&self) -> &[u64] {
        &self.indexes
    }

    /// The planned hashes, given the stored hashes at [`Self::indexes`] in that order.
    pub fn finish(&self, hashes: &[Hash]) -> Result<Vec<Hash>, TreeError> {
        check_count(self.indexes.len(), hashes.len())?;
        let mut out = Vec::with_capacity(self.groups.len());
        let mut at = 0;
        for len in &self.groups {
            out.push(fold_subtrees(&hashes[at..at + len]));
            at += len;
        }
        Ok(out)
    }

    pub(crate) fn read<R: HashReader + ?Sized>(&self, reader: &R) -> Result<Vec<Hash>, TreeError> {
        let hashes = read_all(reader, &self.indexes)?;
        self.finish(&hashes)
    }
}

/// Plans the root hash of the tree of `size` leaves: one output hash.
pub fn tree_hash_plan(size: u64) -> Result<HashPlan, TreeError> {
    check_size(size)?;
    let mut plan = HashPlan::new();
    plan.push_range(0, size);
    Ok(plan)
}

/// Root hash of the tree of `size` leaves ([`super::EMPTY_TREE_HASH`] for
/// size 0), from at most `log2(size) + 1` stored hashes read in one call.
pub fn tree_hash<R: HashReader + ?Sized>(size: u64, reader: &R) -> Result<Hash, TreeError> {
    let hashes = tree_hash_plan(size)?.read(reader)?;
    Ok(hashes
        .first()
        .copied()
        .unwrap_or(super::hash::EMPTY_TREE_HASH))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::convert::Infallible;

    /// An in-memory backend that counts what it reads.
    #[derive(Default)]
    pub(crate) struct MemoryHashes {
        pub(crate) hashes: RefCell<Vec<Hash>>,
        pub(crate) reads: Cell<usize>,
        pub(crate) calls: Cell<usize>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("stored hash {0} is missing")]
    pub(crate) struct Missing(u64);

    impl HashReader for MemoryHashes {
        type Error = Missing;
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Missing> {
            self.calls.set(self.calls.get() + 1);
            self.reads.set(self.reads.get() + indexes.len());
            let hashes = self.hashes.borrow();
            indexes
                .iter()
                .map(|i| {
                    usize::try_from(*i)
                        .ok()
                        .and_then(|i| hashes.get(i).copied())
                        .ok_or(Missing(*i))
                })
                .collect()
        }
    }

    impl MemoryHashes {
        pub(crate) fn with_leaves(leaves: &[Vec<u8>]) -> Self {
            let store = Self::default();
            for leaf in leaves {
                store.append(leaf);
            }
            store
        }

        pub(crate) fn append(&self, data: &[u8]) {
            let n = self.size();
            let new = hashes_to_store(n, data, self).expect("append");
            assert_eq!(self.hashes.borrow().len() as u64, stored_hash_count(n));
            self.hashes.borrow_mut().extend(new);
        }

        pub(crate) fn size(&self) -> u64 {
            // Invert stored_hash_count by counting: fine for test sizes.
            let stored = self.hashes.borrow().len() as u64;
            let mut n = stored / 2;
            while stored_hash_count(n) < stored {
                n += 1;
            }
            n
        }

        pub(crate) fn reset_counts(&self) {
            self.reads.set(0);
            self.calls.set(0);
        }
    }

    /// Readers that fail are reported as read errors, not panics.
    struct Broken;
    impl HashReader for Broken {
        type Error = Missing;
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, Missing> {
            Err(Missing(7))
        }
    }

    /// A reader that drops a hash breaks the count check.
    struct Short;
    impl HashReader for Short {
        type Error = Infallible;
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Infallible> {
            Ok(vec![[0; 32]; indexes.len().saturating_sub(1)])
        }
    }

    #[test]
    fn numbering_of_the_first_leaves() {
        // leaf 0: (0,0)=0; leaf 1: (0,1)=1, (1,0)=2; leaf 2: (0,2)=3;
        // leaf 3: (0,3)=4, (1,1)=5, (2,0)=6; leaf 4: (0,4)=7.
        let expected = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
        ];
        for (stored, (level, index)) in expected.into_iter().enumerate() {
            let subtree = Subtree { level, index };
            assert_eq!(subtree.stored_index().expect("in range"), stored as u64);
            assert_eq!(
                Subtree::from_stored_index(stored as u64).expect("valid"),
                subtree
            );
        }
    }

    #[test]
    fn numbering_is_a_bijection_on_the_first_indexes() {
        for stored in 0..100_000u64 {
            let subtree = Subtree::from_stored_index(stored).expect("valid");
            assert_eq!(subtree.stored_index().expect("in range"), stored);
        }
    }

    #[test]
    fn numbering_at_the_limits() {
        let last_leaf = Subtree {
            level: 0,
            index: MAX_TREE_SIZE - 1,
        };
        let top = Subtree {
            level: 62,
            index: 0,
        };
        for subtree in [last_leaf, top] {
            let stored = subtree.stored_index().expect("in range");
            assert_eq!(Subtree::from_stored_index(stored).expect("valid"), subtree);
        }
        assert_eq!(
            top.stored_index().expect("in range") + 1,
            stored_hash_count(MAX_TREE_SIZE)
        );
        let beyond = Subtree {
            level: 0,
            index: MAX_TREE_SIZE,
        };
        assert!(matches!(
            beyond.stored_index(),
            Err(TreeError::TreeTooLarge { .. })
        ));
        assert!(matches!(
            Subtree::from_stored_index(stored_hash_count(MAX_TREE_SIZE)),
            Err(TreeError::BadStoredIndex { .. })
        ));
        assert!(Subtree::from_stored_index(u64::MAX).is_err());
        let huge = Subtree {
            level: 64,
            index: 0,
        };
        assert!(huge.stored_index().is_err());
        assert!(hashes_to_store_plan(u64::MAX, [0; 32]).is_err());
    }

    #[test]
    fn append_plan_indexes_are_the_left_siblings() {
        // Leaf 7 completes (1,3), (2,1), (3,0): it reads (0,6)=10, (1,2)=9... check by formula.
        let plan = hashes_to_store_plan(7, [0; 32]).expect("plan");
        let want: Vec<u64> = [(0, 6), (1, 2), (2, 0)]
            .into_iter()
            .map(|(level, index)| Subtree { level, index }.stored_index().expect("ok"))
            .collect();
        assert_eq!(plan.indexes(), want.as_slice());
        assert_eq!(plan.first_index(), stored_hash_count(7));
        assert_eq!(
            hashes_to_store_plan(MAX_TREE_SIZE, [0; 32])
                .err()
                .map(|e| e.to_string()),
            Some(
                TreeError::TreeTooLarge {
                    size: MAX_TREE_SIZE + 1
                }
                .to_string()
            )
        );
    }

    #[test]
    fn appends_read_at_most_log_n_hashes_in_one_call() {
        let store = MemoryHashes::default();
        for n in 0..5000u64 {
            store.reset_counts();
            store.append(&n.to_be_bytes());
            let bound = 64 - n.leading_zeros() as usize; // floor(log2 n) + 1
            assert!(
                store.reads.get() <= bound,
                "leaf {n} read {}",
                store.reads.get()
            );
            assert!(store.calls.get() <= 1);
            assert_eq!(store.reads.get(), n.trailing_ones() as usize);
        }
    }

    #[test]
    fn tree_hash_reads_one_hash_per_set_bit() {
        let leaves: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let store = MemoryHashes::with_leaves(&leaves);
        for size in 1..=1000u64 {
            store.reset_counts();
            tree_hash(size, &store).expect("root");
            assert_eq!(store.reads.get(), size.count_ones() as usize);
            assert_eq!(store.calls.get(), 1);
        }
        store.reset_counts();
        assert_eq!(
            tree_hash(0, &store).expect("empty"),
            super::super::EMPTY_TREE_HASH
        );
        assert_eq!(store.calls.get(), 0);
    }

    #[test]
    fn reader_failures_are_errors() {
        assert!(matches!(tree_hash(3, &Broken), Err(TreeError::Read(_))));
        assert!(matches!(
            tree_hash(3, &Short),
            Err(TreeError::HashCount {
                expected: 2,
                got: 1
            })
        ));
        let store = MemoryHashes::with_leaves(&[vec![1], vec![2]]);
        assert!(matches!(tree_hash(4, &store), Err(TreeError::Read(_))));
        assert!(matches!(
            hashes_to_store(1, b"x", &Short),
            Err(TreeError::HashCount { .. })
        ));
    }
}
