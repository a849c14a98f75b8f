//! RFC 9162 §2.1 hashing: the leaf and interior-node prefixes.

use sha2::{Digest, Sha256};

/// Size in bytes of every hash in the tree (SHA-256).
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, a subtree hash or a tree's root hash.
pub type Hash = [u8; HASH_SIZE];

/// Root hash of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub const EMPTY_TREE_HASH: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Hash of a leaf: `SHA-256(0x00 || data)`.
///
/// The `0x00` prefix keeps a leaf from ever being taken for an interior
/// node (second-preimage resistance, RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Hash of a range given as its complete subtrees, largest (leftmost) first:
/// `node(s0, node(s1, ... node(s[k-2], s[k-1])))`, which is RFC 9162's MTH
/// of that range when the subtrees are its binary decomposition.
pub(crate) fn fold_subtrees(pieces: &[Hash]) -> Hash {
    let mut rest = pieces.iter().rev();
    let Some(last) = rest.next() else {
        return EMPTY_TREE_HASH;
    };
    rest.fold(*last, |acc, left| node_hash(left, &acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_hash_is_sha256_of_nothing() {
        let digest: Hash = Sha256::digest(b"").into();
        assert_eq!(EMPTY_TREE_HASH, digest);
    }

    #[test]
    fn leaf_of_empty_data_is_the_rfc6962_size_one_root() {
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn fold_is_right_associative() {
        let (a, b, c) = (leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c"));
        assert_eq!(fold_subtrees(&[a]), a);
        assert_eq!(fold_subtrees(&[a, b, c]), node_hash(&a, &node_hash(&b, &c)));
        assert_eq!(fold_subtrees(&[]), EMPTY_TREE_HASH);
    }
}
