//! Verifier tests: the RFC 6962 reference vectors, every proof of every tree
//! up to 64 leaves (and its corruptions), and random trees up to 5,000 leaves.

use super::*;
use crate::tlog::hash::leaf_hash;
use crate::tlog::proof::tests::reference_root;
use crate::tlog::stored::tests::MemoryHashes;
use crate::tlog::{prove_consistency, prove_inclusion, tree_hash};
use proptest::prelude::*;

fn h(s: &str) -> Hash {
    let bytes = hex::decode(s).unwrap();
    bytes.try_into().unwrap()
}

/// The 8 leaves used by Certificate Transparency implementations as the
/// RFC 6962 reference data set.
fn reference_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex::decode(s).unwrap())
    .collect()
}

/// Their root hashes at sizes 1..=8.
const REFERENCE_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn reference_root_at(size: u64) -> Hash {
    h(REFERENCE_ROOTS[size as usize - 1])
}

/// Known inclusion proofs over the reference leaves: (index, size, path).
fn reference_inclusion_proofs() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (0, 1, vec![]),
    ]
}

/// Known consistency proofs over the reference leaves: (old, new, path).
fn reference_consistency_proofs() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (1, 1, vec![]),
    ]
}

#[test]
fn rfc6962_reference_roots() {
    let leaves = reference_leaves();
    let store = MemoryHashes::with_leaves(&leaves);
    assert_eq!(tree_hash(0, &store).unwrap(), EMPTY_TREE_HASH);
    for size in 1..=8 {
        assert_eq!(
            tree_hash(size, &store).unwrap(),
            reference_root_at(size),
            "size {size}"
        );
    }
}

#[test]
fn rfc6962_reference_inclusion_proofs() {
    let leaves = reference_leaves();
    let store = MemoryHashes::with_leaves(&leaves);
    for (index, size, path) in reference_inclusion_proofs() {
        assert_eq!(
            prove_inclusion(index, size, &store).unwrap(),
            path,
            "{index}/{size}"
        );
        let leaf = leaf_hash(&leaves[index as usize]);
        verify_inclusion(&leaf, index, size, &path, &reference_root_at(size)).unwrap();
        assert_inclusion_corruptions_fail(&leaf, index, size, &path, &reference_root_at(size));
    }
}

#[test]
fn rfc6962_reference_consistency_proofs() {
    let store = MemoryHashes::with_leaves(&reference_leaves());
    for (old, new, path) in reference_consistency_proofs() {
        assert_eq!(
            prove_consistency(old, new, &store).unwrap(),
            path,
            "{old}->{new}"
        );
        let (r1, r2) = (reference_root_at(old), reference_root_at(new));
        verify_consistency(old, new, &r1, &r2, &path).unwrap();
        if old < new {
            assert_consistency_corruptions_fail(old, new, &r1, &r2, &path);
        }
    }
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8 % 32] ^= 1 << (bit % 8);
    out
}

/// Every way of changing an inclusion claim that must not verify.
fn assert_inclusion_corruptions_fail(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) {
    let ok =
        |l: &Hash, i: u64, s: u64, p: &[Hash], r: &Hash| verify_inclusion(l, i, s, p, r).is_ok();
    let other = leaf_hash(b"not this leaf");
    assert!(
        !ok(&other, index, size, proof, root),
        "changed leaf {index}/{size}"
    );
    assert!(
        !ok(leaf, index, size, proof, &flip(root, 3)),
        "changed root"
    );
    assert!(
        !ok(leaf, index, size, proof, &EMPTY_TREE_HASH),
        "empty root"
    );
    assert!(!ok(leaf, index + 1, size, proof, root), "index + 1");
    if index > 0 {
        assert!(!ok(leaf, index - 1, size, proof, root), "index - 1");
    }
    assert!(!ok(leaf, index ^ 2, size, proof, root), "index ^ 2");
    assert!(!ok(leaf, index, size * 2, proof, root), "size * 2");
    assert!(!ok(leaf, index, size / 2, proof, root), "size / 2");
    let mut longer = proof.to_vec();
    longer.push(*root);
    assert!(!ok(leaf, index, size, &longer, root), "extended proof");
    let mut longer = vec![*leaf];
    longer.extend_from_slice(proof);
    assert!(!ok(leaf, index, size, &longer, root), "prepended proof");
    if let Some((_, shorter)) = proof.split_last() {
        assert!(!ok(leaf, index, size, shorter, root), "truncated proof");
    }
    for i in 0..proof.len() {
        let mut changed = proof.to_vec();
        changed[i] = flip(&changed[i], 8 * i + 5);
        assert!(!ok(leaf, index, size, &changed, root), "proof[{i}] changed");
    }
}

/// Every way of changing a consistency claim that must not verify.
fn assert_consistency_corruptions_fail(old: u64, new: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) {
    let ok =
        |o: u64, n: u64, a: &Hash, b: &Hash, p: &[Hash]| verify_consistency(o, n, a, b, p).is_ok();
    assert!(
        !ok(old, new, &flip(r1, 1), r2, proof),
        "changed old root {old}->{new}"
    );
    assert!(
        !ok(old, new, r1, &flip(r2, 1), proof),
        "changed new root {old}->{new}"
    );
    assert!(!ok(old, new, r2, r1, proof), "swapped roots");
    assert!(!ok(old, new, r1, r2, &[]), "empty proof");
    assert!(!ok(new, old, r1, r2, proof), "swapped sizes");
    assert!(!ok(old, new * 2, r1, r2, proof), "new * 2");
    assert!(!ok(old, new / 2, r1, r2, proof), "new / 2");
    assert!(
        !ok(old + 1, new, r1, r2, proof) || old + 1 == new,
        "old + 1"
    );
    assert!(!ok(old - 1, new, r1, r2, proof), "old - 1");
    let mut longer = proof.to_vec();
    longer.push(*r2);
    assert!(!ok(old, new, r1, r2, &longer), "extended proof");
    let mut longer = vec![proof[0]];
    longer.extend_from_slice(proof);
    assert!(!ok(old, new, r1, r2, &longer), "prepended proof");
    if let Some((_, shorter)) = proof.split_last() {
        assert!(!ok(old, new, r1, r2, shorter), "truncated proof");
    }
    for i in 0..proof.len() {
        let mut changed = proof.to_vec();
        changed[i] = flip(&changed[i], 8 * i + 4);
        assert!(
            !ok(old, new, r1, r2, &changed),
            "proof[{i}] changed {old}->{new}"
        );
    }
}

fn numbered(i: u64) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

#[test]
fn every_proof_of_every_tree_up_to_64_leaves_verifies_and_no_corruption_does() {
    let all: Vec<Vec<u8>> = (0..64).map(numbered).collect();
    let store = MemoryHashes::with_leaves(&all);
    let leaves: Vec<Hash> = all.iter().map(|d| leaf_hash(d)).collect();
    let roots: Vec<Hash> = (0..=64).map(|n| reference_root(&leaves[..n])).collect();
    for size in 1..=64u64 {
        let root = roots[size as usize];
        assert_eq!(tree_hash(size, &store).unwrap(), root);
        for index in 0..size {
            let proof = prove_inclusion(index, size, &store).unwrap();
            let leaf = leaves[index as usize];
            verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
            assert_inclusion_corruptions_fail(&leaf, index, size, &proof, &root);
            // Another size, with that size's own root: only the same path verifies.
            for other in [size - 1, size + 1] {
                if index < other && other <= 64 {
                    let theirs = prove_inclusion(index, other, &store).unwrap();
                    let verifies =
                        verify_inclusion(&leaf, index, other, &proof, &roots[other as usize])
                            .is_ok();
                    assert_eq!(
                        verifies,
                        theirs == proof,
                        "{index}/{size} as {index}/{other}"
                    );
                }
            }
        }
        for old in 0..=size {
            let proof = prove_consistency(old, size, &store).unwrap();
            let r1 = roots[old as usize];
            verify_consistency(old, size, &r1, &root, &proof).unwrap();
            if 0 < old && old < size {
                assert_consistency_corruptions_fail(old, size, &r1, &root, &proof);
                // A history rewritten anywhere before `old` is detected.
                for changed in [0, old as usize / 2, old as usize - 1] {
                    let mut forged = leaves[..size as usize].to_vec();
                    forged[changed] = leaf_hash(b"forged");
                    let forged_root = reference_root(&forged);
                    assert!(verify_consistency(old, size, &r1, &forged_root, &proof).is_err());
                }
            }
        }
    }
}

#[test]
fn trivial_consistency_cases() {
    let a = leaf_hash(b"a");
    let b = leaf_hash(b"b");
    assert_eq!(
        verify_consistency(0, 0, &EMPTY_TREE_HASH, &EMPTY_TREE_HASH, &[]),
        Ok(())
    );
    assert_eq!(verify_consistency(0, 5, &EMPTY_TREE_HASH, &a, &[]), Ok(()));
    assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(3, 3, &a, &b, &[]),
        Err(VerifyError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(0, 5, &a, &a, &[]),
        Err(VerifyError::OldRootMismatch)
    );
    assert_eq!(
        verify_consistency(3, 3, &a, &a, &[b]),
        Err(VerifyError::ProofNotEmpty { old: 3, new: 3 })
    );
    assert_eq!(
        verify_consistency(0, 1, &EMPTY_TREE_HASH, &a, &[b]),
        Err(VerifyError::ProofNotEmpty { old: 0, new: 1 })
    );
    assert_eq!(
        verify_consistency(2, 1, &a, &b, &[]),
        Err(VerifyError::SizesOutOfOrder { old: 2, new: 1 })
    );
    assert_eq!(
        verify_consistency(1, 2, &a, &b, &[]),
        Err(VerifyError::ProofTooShort)
    );
}

#[test]
fn trivial_inclusion_cases() {
    let a = leaf_hash(b"a");
    assert_eq!(verify_inclusion(&a, 0, 1, &[], &a), Ok(()));
    assert_eq!(
        verify_inclusion(&a, 0, 0, &[], &a),
        Err(VerifyError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion(&a, 1, 1, &[], &a),
        Err(VerifyError::IndexOutOfRange { index: 1, size: 1 })
    );
    assert_eq!(
        verify_inclusion(&a, 0, 1, &[a], &a),
        Err(VerifyError::ProofTooLong)
    );
    assert_eq!(
        verify_inclusion(&a, 0, 2, &[], &a),
        Err(VerifyError::ProofTooShort)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random trees up to 5,000 leaves: sampled inclusion and consistency
    /// proofs verify, and a changed leaf never does.
    #[test]
    fn random_trees_up_to_5000_leaves(
        seed in any::<u64>(),
        size in 1u64..=5000,
        samples in prop::collection::vec((any::<u64>(), any::<u64>()), 16),
    ) {
        let all: Vec<Vec<u8>> = (0..size).map(|i| format!("{seed}/{i}").into_bytes()).collect();
        let store = MemoryHashes::with_leaves(&all);
        for (a, b) in samples {
            let tree = 1 + a % size;
            let index = b % tree;
            let root = tree_hash(tree, &store).unwrap();
            let leaf = leaf_hash(&all[index as usize]);
            let proof = prove_inclusion(index, tree, &store).unwrap();
            prop_assert!(verify_inclusion(&leaf, index, tree, &proof, &root).is_ok());
            let changed = leaf_hash(format!("{seed}/{index}!").as_bytes());
            prop_assert!(verify_inclusion(&changed, index, tree, &proof, &root).is_err());

            let old = b % (tree + 1);
            let old_root = tree_hash(old, &store).unwrap();
            let proof = prove_consistency(old, tree, &store).unwrap();
            prop_assert!(verify_consistency(old, tree, &old_root, &root, &proof).is_ok());
            if old > 0 && old < tree {
                let forged = flip(&old_root, (a % 256) as usize);
                prop_assert!(verify_consistency(old, tree, &forged, &root, &proof).is_err());
            }
        }
    }
}
