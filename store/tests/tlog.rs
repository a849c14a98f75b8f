//! The audit log's core checked by an implementation that is not ours:
//! `tlog_interop.py`, written from RFC 9162 and the C2SP specs in Python
//! (hashlib, and the `cryptography` package for Ed25519), recomputes every
//! root and proof this file writes and opens every signed checkpoint.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output};

use countersign_store::tlog::{
    Checkpoint, Hash, HashReader, SignerKey, VerifierKey, hashes_to_store, open_checkpoint,
    prove_consistency, prove_inclusion, sign_checkpoint, stored_hash_count, tree_hash,
};
use serde_json::{Value, json};

/// Stored hashes in a vector: the backend table `(index) -> hash`.
#[derive(Default)]
struct Memory(RefCell<Vec<Hash>>);

impl HashReader for Memory {
    type Error = Infallible;
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Infallible> {
        let hashes = self.0.borrow();
        Ok(indexes.iter().map(|i| hashes[*i as usize]).collect())
    }
}

struct Tree {
    leaves: Vec<Vec<u8>>,
    stored: Memory,
}

impl Tree {
    fn new(size: u64, salt: &str) -> Self {
        let mut tree = Tree {
            leaves: Vec::new(),
            stored: Memory::default(),
        };
        for i in 0..size {
            // Leaves of varied lengths, including an empty one.
            let data = format!("{salt}:{i}:{}", "x".repeat((i % 7) as usize)).into_bytes();
            let data = if i == 3 { Vec::new() } else { data };
            let new = hashes_to_store(i, &data, &tree.stored).unwrap();
            assert_eq!(tree.stored.0.borrow().len() as u64, stored_hash_count(i));
            tree.stored.0.borrow_mut().extend(new);
            tree.leaves.push(data);
        }
        tree
    }

    fn root(&self, size: u64) -> Hash {
        tree_hash(size, &self.stored).unwrap()
    }

    fn to_json(&self, sizes: &[u64], pairs: &[(u64, u64)], consistency: &[(u64, u64)]) -> Value {
        let roots: BTreeMap<String, String> = sizes
            .iter()
            .map(|s| (s.to_string(), hex::encode(self.root(*s))))
            .collect();
        let proof_json = |proof: Vec<Hash>| proof.iter().map(hex::encode).collect::<Vec<_>>();
        let inclusion: Vec<Value> = pairs
            .iter()
            .map(|&(index, size)| {
                let proof = prove_inclusion(index, size, &self.stored).unwrap();
                json!({"index": index, "size": size, "proof": proof_json(proof)})
            })
            .collect();
        let consistency: Vec<Value> = consistency
            .iter()
            .map(|&(old, new)| {
                let proof = prove_consistency(old, new, &self.stored).unwrap();
                json!({"old": old, "new": new, "proof": proof_json(proof)})
            })
            .collect();
        json!({
            "leaves": self.leaves.iter().map(hex::encode).collect::<Vec<_>>(),
            "roots": roots,
            "inclusion": inclusion,
            "consistency": consistency,
        })
    }
}

fn interop_data() -> Value {
    let mut trees = Vec::new();

    // Every proof of every tree up to 40 leaves (one tree, all its prefixes).
    let small = Tree::new(40, "small");
    let sizes: Vec<u64> = (0..=40).collect();
    let all_inclusion: Vec<(u64, u64)> =
        (1..=40).flat_map(|n| (0..n).map(move |i| (i, n))).collect();
    let all_consistency: Vec<(u64, u64)> = (1..=40)
        .flat_map(|n| (0..=n).map(move |m| (m, n)))
        .collect();
    trees.push(small.to_json(&sizes, &all_inclusion, &all_consistency));

    // A larger tree, sampled.
    let large = Tree::new(1500, "large");
    let sizes: [u64; 11] = [1, 2, 511, 512, 513, 1000, 1023, 1024, 1025, 1499, 1500];
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for &size in &sizes {
        for index in [0, 1, size / 3, size / 2, size.saturating_sub(2), size - 1] {
            if index < size {
                inclusion.push((index, size));
            }
        }
        for old in [1, 7, 64, size / 2, size - 1, size] {
            if old <= size {
                consistency.push((old, size));
            }
        }
    }
    trees.push(large.to_json(&sizes, &inclusion, &consistency));

    // Signed checkpoints of both trees.
    let signer = SignerKey::from_seed("countersign.example/ws/acme", [11; 32]).unwrap();
    let witness = SignerKey::from_seed("witness.example/w1", [12; 32]).unwrap();
    let verifier = signer.verifier().to_string();
    let mut checkpoints = Vec::new();
    let mut bad = Vec::new();
    for (tree_index, tree, sizes) in [
        (0, &small, vec![0, 1, 5, 40]),
        (1, &large, vec![1024, 1500]),
    ] {
        for size in sizes {
            let mut checkpoint =
                Checkpoint::new("countersign.example/ws/acme", size, tree.root(size));
            if size == 5 {
                checkpoint
                    .extensions
                    .push("Timestamp: 2025-01-01T00:00:00Z".into());
            }
            let note = sign_checkpoint(&checkpoint, &[&signer, &witness]).unwrap();
            // Our own reader agrees before Python looks.
            let verifier_key = VerifierKey::parse(&verifier).unwrap();
            assert_eq!(
                open_checkpoint(note.as_bytes(), &[verifier_key]).unwrap().0,
                checkpoint
            );
            checkpoints.push(json!({
                "note": note,
                "verifier_key": verifier,
                "origin": checkpoint.origin,
                "size": size,
                "extensions": checkpoint.extensions,
                "tree": tree_index,
            }));
        }
    }
    let good = sign_checkpoint(
        &Checkpoint::new("countersign.example/ws/acme", 40, small.root(40)),
        &[&signer],
    )
    .unwrap();
    bad.push(json!({"why": "size changed after signing", "note": good.replacen("\n40\n", "\n41\n", 1), "verifier_key": verifier}));
    bad.push(json!({"why": "signed by the witness only", "note": sign_checkpoint(&Checkpoint::new("countersign.example/ws/acme", 40, small.root(40)), &[&witness]).unwrap(), "verifier_key": verifier}));
    bad.push(json!({"why": "signed with another key of the same name", "note": sign_checkpoint(&Checkpoint::new("countersign.example/ws/acme", 40, small.root(40)), &[&SignerKey::from_seed("countersign.example/ws/acme", [13; 32]).unwrap()]).unwrap(), "verifier_key": verifier}));

    json!({"trees": trees, "checkpoints": checkpoints, "bad_checkpoints": bad})
}

fn run_python(script: &Path, data: &Path) -> std::io::Result<Output> {
    Command::new("python3").arg(script).arg(data).output()
}

#[test]
fn an_independent_python_verifier_accepts_our_proofs_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tlog.json");
    std::fs::write(&data, serde_json::to_vec(&interop_data()).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tlog_interop.py");

    let mut output = match run_python(&script, &data) {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!("SKIPPED: python3 is not installed, so the independent verifier cannot run");
            return;
        }
        Err(e) => panic!("running python3: {e}"),
    };
    if output.status.code() == Some(3) {
        // The verifier needs the `cryptography` package for Ed25519: install it once.
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "cryptography"])
            .status()
            .unwrap();
        assert!(pip.success(), "python3 -m pip install cryptography failed");
        output = run_python(&script, &data).unwrap();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "independent verifier failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failures"), "{stdout}");
    eprintln!("{stdout}");
}

#[test]
fn our_verifiers_accept_what_the_reference_data_set_says() {
    // The same JSON is consumed by our own verifiers, so both sides read one data set.
    let data = interop_data();
    for tree in data["trees"].as_array().unwrap() {
        let leaves: Vec<Vec<u8>> = tree["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| hex::decode(l.as_str().unwrap()).unwrap())
            .collect();
        let roots = &tree["roots"];
        let hash = |v: &Value| -> Hash {
            hex::decode(v.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        };
        for item in tree["inclusion"].as_array().unwrap() {
            let (index, size) = (
                item["index"].as_u64().unwrap(),
                item["size"].as_u64().unwrap(),
            );
            let Some(root) = roots.get(size.to_string()) else {
                continue;
            };
            let proof: Vec<Hash> = item["proof"].as_array().unwrap().iter().map(hash).collect();
            let leaf = countersign_store::tlog::leaf_hash(&leaves[index as usize]);
            countersign_store::tlog::verify_inclusion(&leaf, index, size, &proof, &hash(root))
                .unwrap();
        }
        for item in tree["consistency"].as_array().unwrap() {
            let (old, new) = (item["old"].as_u64().unwrap(), item["new"].as_u64().unwrap());
            let (Some(r1), Some(r2)) = (roots.get(old.to_string()), roots.get(new.to_string()))
            else {
                continue;
            };
            let proof: Vec<Hash> = item["proof"].as_array().unwrap().iter().map(hash).collect();
            countersign_store::tlog::verify_consistency(old, new, &hash(r1), &hash(r2), &proof)
                .unwrap();
        }
    }
}
