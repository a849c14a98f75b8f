//! Signed-note tests, with the vectors of Go's `golang.org/x/mod/sumdb/note`.

use super::*;

const PETER_SIGNER: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VERIFIER: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> VerifierKey {
    VerifierKey::parse(PETER_VERIFIER).unwrap()
}

fn enoch() -> VerifierKey {
    VerifierKey::parse(ENOCH_VERIFIER).unwrap()
}

fn note(sigs: &[&str]) -> String {
    format!("{TEXT}\n{}", sigs.concat())
}

#[test]
fn go_verifier_key_parses_and_round_trips() {
    let key = peter();
    assert_eq!(key.name(), "PeterNeumann");
    assert_eq!(key.key_id(), 0xc74f20a3);
    assert_eq!(key.to_string(), PETER_VERIFIER);
    assert_eq!(key_id("PeterNeumann", key.public_key()), 0xc74f20a3);
    assert_eq!(PETER_VERIFIER.parse::<VerifierKey>().unwrap(), key);
}

#[test]
fn go_signer_key_parses_round_trips_and_matches_its_verifier() {
    let signer = SignerKey::parse(PETER_SIGNER).unwrap();
    assert_eq!(signer.to_key_string(), PETER_SIGNER);
    assert_eq!(signer.verifier().to_string(), PETER_VERIFIER);
    assert!(!format!("{signer:?}").contains("AYEKF"));
}

#[test]
fn every_mangled_verifier_key_is_rejected() {
    let b = PETER_VERIFIER.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(VerifierKey::parse(&s).is_err(), "accepted substring {s:?}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8_lossy(&m);
        assert!(VerifierKey::parse(&s).is_err(), "accepted {s:?}");
    }
    // Wrong key length and unknown algorithm, each with a matching key id.
    assert!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err()
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::UnsupportedAlgorithm(0x65))
    );
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::Malformed { .. })
    ));
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::KeyIdMismatch { .. })
    ));
}

#[test]
fn every_mangled_signer_key_is_rejected() {
    let b = PETER_SIGNER.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(SignerKey::parse(&s).is_err(), "accepted substring {s:?}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8_lossy(&m);
        assert!(SignerKey::parse(&s).is_err(), "accepted {s:?}");
    }
}

#[test]
fn signing_reproduces_the_go_vector() {
    let signer = SignerKey::parse(PETER_SIGNER).unwrap();
    assert_eq!(sign_note(TEXT, &[&signer]).unwrap(), note(&[PETER_SIG]));
    assert_eq!(
        sign_note("abc", &[&signer]),
        Err(NoteError::Malformed {
            reason: "the text must end with a newline"
        })
    );
    assert_eq!(sign_note(TEXT, &[]), Err(NoteError::NoSigner));
    assert!(sign_note("a\u{1}b\n", &[&signer]).is_err());
}

#[test]
fn open_verifies_known_and_ignores_unknown_keys() {
    let n = open_note(note(&[PETER_SIG, ENOCH_SIG]).as_bytes(), &[peter()]).unwrap();
    assert_eq!(n.text, TEXT);
    assert_eq!(n.verified.len(), 1);
    assert_eq!(n.verified[0].name, "PeterNeumann");
    assert_eq!(n.verified[0].key_id, 0xc74f20a3);
    assert_eq!(n.unverified.len(), 1);
    assert_eq!(n.unverified[0].name, "EnochRoot");
    assert_eq!(n.unverified[0].to_line(), ENOCH_SIG);

    let n = open_note(
        note(&[PETER_SIG, ENOCH_SIG]).as_bytes(),
        &[peter(), enoch()],
    )
    .unwrap();
    assert_eq!(n.verified.len(), 2);
    assert!(n.unverified.is_empty());

    assert_eq!(
        open_note(note(&[PETER_SIG, ENOCH_SIG]).as_bytes(), &[]),
        Err(NoteError::NoKnownSignature)
    );
}

#[test]
fn duplicated_verifiers_are_ambiguous_only_when_they_differ() {
    // The same key twice is not ambiguous.
    open_note(note(&[ENOCH_SIG]).as_bytes(), &[enoch(), peter(), enoch()]).unwrap();
    // Another key forged to share name and id is.
    let other = SignerKey::from_seed("EnochRoot", [9; 32])
        .unwrap()
        .verifier();
    let forged = VerifierKey {
        id: 0xaf0cfe78,
        ..other
    };
    assert_eq!(
        open_note(note(&[ENOCH_SIG]).as_bytes(), &[enoch(), forged.clone()]),
        Err(NoteError::AmbiguousKey {
            name: "EnochRoot".into(),
            key_id: 0xaf0cfe78
        })
    );
    // An unused ambiguity does not matter.
    open_note(note(&[PETER_SIG]).as_bytes(), &[enoch(), forged, peter()]).unwrap();
}

#[test]
fn a_bad_signature_by_a_known_key_rejects_the_note() {
    let bad = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open_note(note(&[&bad]).as_bytes(), &[peter()]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: 0xc74f20a3
        })
    );
    // The text changed after signing.
    let changed = note(&[PETER_SIG]).replacen("cryptography", "Cryptography", 1);
    assert!(matches!(
        open_note(changed.as_bytes(), &[peter()]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn duplicates_are_collapsed() {
    let enoch_bad = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let msg = note(&[PETER_SIG, PETER_SIG, ENOCH_SIG, ENOCH_SIG, &enoch_bad]);
    let n = open_note(msg.as_bytes(), &[peter()]).unwrap();
    assert_eq!(n.verified.len(), 1);
    assert_eq!(n.unverified.len(), 2);
}

#[test]
fn too_many_signatures_are_refused() {
    let msg = note(&vec![PETER_SIG; MAX_NOTE_SIGNATURES + 1]);
    assert_eq!(
        open_note(msg.as_bytes(), &[peter()]),
        Err(NoteError::TooManySignatures {
            max: MAX_NOTE_SIGNATURES
        })
    );
    let msg = note(&vec![PETER_SIG; 16]);
    open_note(msg.as_bytes(), &[peter()]).unwrap();
}

#[test]
fn malformed_notes_are_refused() {
    let no_newline = &PETER_SIG[..PETER_SIG.len() - 1];
    let bad: Vec<Vec<u8>> = vec![
        TEXT.into(),
        format!("{TEXT}\n").into(),
        format!("{TEXT}\n{no_newline}").into(),
        format!("\u{1}{TEXT}\n{PETER_SIG}").into(),
        [&[0xff][..], format!("{TEXT}\n{PETER_SIG}").as_bytes()].concat(),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=").into(),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n").into(),
        format!("{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
        format!("{TEXT}\n— PeterNeumann x08g\n").into(),
        format!("{TEXT}\n— PeterNeumann x08go\n").into(),
        format!("{TEXT}\n— PeterNeumann x08go/ZJ kuBS9UG\n").into(),
        format!("{TEXT}\n— a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
        format!("{TEXT}\r\n{PETER_SIG}").into(),
    ];
    for msg in bad {
        let err = open_note(&msg, &[peter()]).unwrap_err();
        assert!(
            matches!(err, NoteError::Malformed { .. }),
            "{err:?} for {:?}",
            String::from_utf8_lossy(&msg)
        );
    }
}

#[test]
fn our_signature_verifies_and_keys_round_trip() {
    let signer = SignerKey::from_seed("countersign.example/log", [7; 32]).unwrap();
    let again = SignerKey::parse(&signer.to_key_string()).unwrap();
    assert_eq!(again.verifier(), signer.verifier());
    let verifier = VerifierKey::parse(&signer.verifier().to_string()).unwrap();
    let text = "one\n\ntwo, after an empty line\n";
    let msg = sign_note(text, &[&signer, &SignerKey::parse(PETER_SIGNER).unwrap()]).unwrap();
    let n = open_note(msg.as_bytes(), &[verifier]).unwrap();
    assert_eq!(n.text, text);
    assert_eq!(n.unverified.len(), 1);
    assert!(SignerKey::from_seed("bad name", [0; 32]).is_err());
    assert!(SignerKey::from_seed("", [0; 32]).is_err());
    assert!(VerifierKey::new("a+b", *verifier_key().public_key()).is_err());
}

fn verifier_key() -> VerifierKey {
    peter()
}
