//! A workspace's Merkle tree as the backends append to it: the frontier
//! (the hashes of the complete subtrees that make up the tree, largest
//! first), from which a new leaf's stored hashes are computed without
//! reading anything else.
//!
//! Leaf `i` of a workspace's tree is its event with seq `i + 1`; the leaf
//! data is the event's canonical bytes ([`crate::event_leaf_data`]). The
//! stored hashes are those of [`crate::tlog::hashes_to_store`], numbered as
//! [`crate::tlog::Subtree::stored_index`] says, in the `tree_hashes` table.

use crate::error::StoreError;
use crate::tlog::{self, Hash, TreeError};

/// The complete subtrees of a tree of `size` leaves, largest first, each
/// with its stored-hash index: at most 63 entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frontier {
    size: u64,
    pieces: Vec<(u64, Hash)>,
}

/// The stored hashes one append writes: `hashes[k]` goes at `first_index + k`.
#[derive(Debug, Clone)]
pub(crate) struct NewHashes {
    pub first_index: u64,
    pub hashes: Vec<Hash>,
}

pub(crate) fn tree_error(e: TreeError) -> StoreError {
    match e {
        TreeError::IndexOutOfRange { .. }
        | TreeError::SizesOutOfOrder { .. }
        | TreeError::TreeTooLarge { .. } => StoreError::TreeRange {
            message: e.to_string(),
        },
        other => StoreError::corrupt(format!("merkle tree: {other}")),
    }
}

impl Frontier {
    /// The frontier of the empty tree.
    pub(crate) fn empty() -> Self {
        Self {
            size: 0,
            pieces: Vec::new(),
        }
    }

    /// The stored-hash indexes to read to load the frontier of a tree of
    /// `size` leaves, in the order [`Self::from_hashes`] wants them.
    pub(crate) fn indexes(size: u64) -> Result<Vec<u64>, StoreError> {
        Ok(tlog::tree_hash_plan(size)
            .map_err(tree_error)?
            .indexes()
            .to_vec())
    }

    /// The frontier of a tree of `size` leaves, from the stored hashes at
    /// [`Self::indexes`]`(size)`.
    pub(crate) fn from_hashes(size: u64, hashes: &[Hash]) -> Result<Self, StoreError> {
        let indexes = Self::indexes(size)?;
        if indexes.len() != hashes.len() {
            return Err(StoreError::corrupt(format!(
                "merkle tree of size {size}: {} stored hashes missing",
                indexes.len().saturating_sub(hashes.len())
            )));
        }
        Ok(Self {
            size,
            pieces: indexes.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root hash.
    pub(crate) fn root(&self) -> Hash {
        let mut rest = self.pieces.iter().rev().map(|(_, h)| *h);
        let Some(last) = rest.next() else {
            return tlog::EMPTY_TREE_HASH;
        };
        rest.fold(last, |acc, left| tlog::node_hash(&left, &acc))
    }

    /// Appends a leaf with data `leaf_data` and returns the hashes to store.
    pub(crate) fn append(&mut self, leaf_data: &[u8]) -> Result<NewHashes, StoreError> {
        let plan = tlog::hashes_to_store_plan(self.size, tlog::leaf_hash(leaf_data))
            .map_err(tree_error)?;
        // The siblings are the smallest pieces, lowest level first.
        let siblings = plan.indexes();
        let mut read = Vec::with_capacity(siblings.len());
        for index in siblings {
            let hash = self
                .pieces
                .iter()
                .rev()
                .find(|(i, _)| i == index)
                .map(|(_, h)| *h)
                .ok_or_else(|| {
                    StoreError::corrupt(format!("merkle frontier lacks stored hash {index}"))
                })?;
            read.push(hash);
        }
        let hashes = plan.finish(&read).map_err(tree_error)?;
        let merged = siblings.len();
        self.pieces.truncate(self.pieces.len() - merged);
        let top = hashes.last().copied().unwrap_or(tlog::EMPTY_TREE_HASH);
        let top_index = plan.first_index() + u64::try_from(merged).unwrap_or(u64::MAX);
        self.pieces.push((top_index, top));
        self.size += 1;
        Ok(NewHashes {
            first_index: plan.first_index(),
            hashes,
        })
    }
}

/// A hash read back from a BLOB / BYTEA column.
pub(crate) fn hash_from_db(bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::try_from(bytes)
        .map_err(|_| StoreError::corrupt(format!("stored hash has {} bytes", bytes.len())))
}

pub(crate) fn index_to_db(index: u64) -> Result<i64, StoreError> {
    i64::try_from(index).map_err(|_| StoreError::corrupt(format!("tree index {index} too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_appends_like_tlog_and_reloads() {
        let mut stored: Vec<Hash> = Vec::new();
        let mut f = Frontier::empty();
        for i in 0..100u64 {
            let data = format!("leaf {i}");
            let new = f.append(data.as_bytes()).unwrap();
            assert_eq!(new.first_index, stored.len() as u64);
            stored.extend(new.hashes);
            let size = i + 1;
            let hashes: Vec<Hash> = Frontier::indexes(size)
                .unwrap()
                .iter()
                .map(|i| stored[*i as usize])
                .collect();
            let reloaded = Frontier::from_hashes(size, &hashes).unwrap();
            assert_eq!(reloaded, f);
            assert_eq!(f.size(), size);
        }
        assert_eq!(stored.len() as u64, tlog::stored_hash_count(100));
    }
}
