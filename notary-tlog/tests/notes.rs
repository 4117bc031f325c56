//! Signed notes and checkpoints.
//!
//! The Go vectors are from golang.org/x/mod (BSD-3-Clause): sumdb/note/note_test.go (the
//! PeterNeumann and EnochRoot keys, texts and signatures of TestSign and TestOpen) and
//! sumdb/tlog/note_test.go (TestFormatTree). Only the data is re-typed here.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use notary_tlog::note::{attach_signature, open_note, sign_note};
use notary_tlog::{
    leaf_hash, Checkpoint, Ed25519NoteSigner, Error, Hash, MemoryHashStore, NoteKey, NoteSigner,
    SignError,
};

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// Polls a future once: the in-process signer never waits.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("test futures complete at once"),
    }
}

const ORIGIN: &str = "notary.example.com/tlog";

fn log_key(seed: u8) -> (Ed25519NoteSigner, NoteKey) {
    let signer = Ed25519NoteSigner::from_seed([seed; 32]);
    let key = NoteKey::new(ORIGIN, signer.public_key()).unwrap();
    (signer, key)
}

#[test]
fn go_note_vectors_sign() {
    let (signer, key) = Ed25519NoteSigner::from_private_key_string(PETER_SKEY).unwrap();
    assert_eq!(key.vkey(), PETER_VKEY);
    assert_eq!(key.key_id(), 0xc74f20a3);
    assert_eq!(NoteKey::from_vkey(PETER_VKEY).unwrap(), key);
    // Ed25519 is deterministic, so the note is byte for byte Go's.
    let note = now(sign_note(TEXT, &key, &signer)).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn go_note_vectors_open() {
    let peter = NoteKey::from_vkey(PETER_VKEY).unwrap();
    let enoch = NoteKey::from_vkey(ENOCH_VKEY).unwrap();
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(open_note(both.as_bytes(), &peter).unwrap(), TEXT);
    assert_eq!(open_note(both.as_bytes(), &enoch).unwrap(), TEXT);
    // Signed by Enoch only: not a note by Peter.
    let enoch_only = format!("{TEXT}\n{ENOCH_SIG}");
    assert!(matches!(
        open_note(enoch_only.as_bytes(), &peter),
        Err(Error::Verification(_))
    ));
    // Peter's signature on another text.
    let edited = format!("{}\n{PETER_SIG}", TEXT.replace("answer", "question"));
    assert!(matches!(
        open_note(edited.as_bytes(), &peter),
        Err(Error::Verification(_))
    ));
    // Malformed: no blank line, no signature.
    assert!(matches!(
        open_note(format!("{TEXT}{PETER_SIG}").as_bytes(), &peter),
        Err(Error::MalformedNote(_))
    ));
    assert!(open_note(format!("{TEXT}\n").as_bytes(), &peter).is_err());
    // Bad private key strings.
    for bad in [
        PETER_SKEY.replace("c74f20a3", "c74f20a4"),
        PETER_SKEY.replace("PRIVATE+KEY+", ""),
        PETER_SKEY.replace("+AYEK", "+AoEK"),
        format!("{PETER_SKEY}+x"),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AQ==".to_owned(),
    ] {
        assert!(
            Ed25519NoteSigner::from_private_key_string(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn go_tree_vector() {
    // Go's sumdb tree note text is a checkpoint body.
    let cp = Checkpoint::new(
        "go.sum database tree",
        123456789012,
        leaf_hash(b"hello world"),
    )
    .unwrap();
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    assert_eq!(cp.to_text(), golden);
    assert_eq!(Checkpoint::parse(golden.as_bytes()).unwrap(), cp);
    for bad in [
        golden.replace("123456789012", "0xabcdef"),
        golden.replace("Bb0=", "BTOOBIG="),
    ] {
        assert!(Checkpoint::parse(bad.as_bytes()).is_err());
    }
}

fn checkpoint(size: u64) -> Checkpoint {
    let mut store = MemoryHashStore::new();
    for i in 0..size {
        store.append(&i.to_be_bytes()).unwrap();
    }
    Checkpoint::new(ORIGIN, size, store.root().unwrap()).unwrap()
}

#[test]
fn checkpoint_signs_and_opens() {
    let (signer, key) = log_key(1);
    let cp = checkpoint(42);
    let note = now(cp.sign(&key, &signer)).unwrap();
    let text = cp.to_text();
    assert!(note.starts_with(&format!("{text}\n— {ORIGIN} ")));
    assert!(note.ends_with('\n'));
    assert_eq!(Checkpoint::open(note.as_bytes(), &key).unwrap(), cp);
    // A client configured with the vkey string gets the same answer.
    let client_key = NoteKey::from_vkey(&key.vkey()).unwrap();
    assert_eq!(Checkpoint::open(note.as_bytes(), &client_key).unwrap(), cp);
}

#[test]
fn note_signed_by_another_key_fails() {
    let (_, key) = log_key(1);
    let (other_signer, other_key) = log_key(2);
    let cp = checkpoint(42);
    // Same name, other key: a different key ID, so no signature by the expected key.
    let note = now(cp.sign(&other_key, &other_signer)).unwrap();
    assert!(matches!(
        Checkpoint::open(note.as_bytes(), &key),
        Err(Error::Verification(_))
    ));
    // Other key's signature under the expected key's ID: caught as a bad signature.
    let forged = attach_forged(&cp.to_text(), &key, &other_signer);
    assert!(matches!(
        Checkpoint::open(forged.as_bytes(), &key),
        Err(Error::Verification(_))
    ));
}

/// A note whose signature line names `key` but carries a signature by `signer`.
fn attach_forged(text: &str, key: &NoteKey, signer: &Ed25519NoteSigner) -> String {
    use base64::Engine as _;
    let sig = now(signer.sign(text.as_bytes())).unwrap();
    let mut blob = key.key_id().to_be_bytes().to_vec();
    blob.extend_from_slice(&sig);
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    format!("{text}\n— {} {b64}\n", key.name())
}

#[test]
fn tampered_checkpoint_fails() {
    let (signer, key) = log_key(1);
    let cp = checkpoint(42);
    let note = now(cp.sign(&key, &signer)).unwrap();
    let bigger = note.replacen("\n42\n", "\n43\n", 1);
    assert!(Checkpoint::open(bigger.as_bytes(), &key).is_err());
    let other_root = checkpoint(41).root().to_string();
    let reroot = note.replacen(&cp.root().to_string(), &other_root, 1);
    assert!(Checkpoint::open(reroot.as_bytes(), &key).is_err());
    // Flip one bit of the signature.
    let sig_line = note.lines().last().unwrap();
    let mut chars: Vec<char> = sig_line.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let flipped = note.replace(sig_line, &chars.into_iter().collect::<String>());
    assert!(Checkpoint::open(flipped.as_bytes(), &key).is_err());
}

#[test]
fn checkpoint_key_must_be_named_after_the_origin() {
    let signer = Ed25519NoteSigner::from_seed([1; 32]);
    let elsewhere = NoteKey::new("other.example.com/tlog", signer.public_key()).unwrap();
    let cp = checkpoint(3);
    assert!(matches!(
        now(cp.sign(&elsewhere, &signer)),
        Err(Error::Verification(_))
    ));
    // A note by that key over a checkpoint of ORIGIN is refused on opening as well.
    let note = now(sign_note(&cp.to_text(), &elsewhere, &signer)).unwrap();
    assert!(matches!(
        Checkpoint::open(note.as_bytes(), &elsewhere),
        Err(Error::Verification(_))
    ));
}

#[test]
fn cosignatures_by_unknown_keys_are_ignored() {
    let (signer, key) = log_key(1);
    let (witness_signer, _) = log_key(9);
    let witness = NoteKey::new("witness.example.org", witness_signer.public_key()).unwrap();
    let cp = checkpoint(7);
    let note = now(cp.sign(&key, &signer)).unwrap();
    let cosigned = now(sign_note(&cp.to_text(), &witness, &witness_signer)).unwrap();
    let witness_line = cosigned.lines().last().unwrap();
    let both = format!("{note}{witness_line}\n");
    assert_eq!(Checkpoint::open(both.as_bytes(), &key).unwrap(), cp);
}

/// Stands in for the remote signer service.
struct Remote {
    answer: Result<Ed25519NoteSigner, &'static str>,
}

#[async_trait]
impl NoteSigner for Remote {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        match &self.answer {
            Ok(s) => s.sign(message).await,
            Err(e) => Err(SignError::msg(*e)),
        }
    }
}

#[test]
fn signer_failures_and_wrong_keys_are_errors() {
    let (_, key) = log_key(1);
    let cp = checkpoint(5);
    let down = Remote {
        answer: Err("unavailable"),
    };
    assert!(matches!(now(cp.sign(&key, &down)), Err(Error::Sign(_))));
    // A remote signer holding another key: caught before anything is published.
    let wrong = Remote {
        answer: Ok(Ed25519NoteSigner::from_seed([2; 32])),
    };
    assert!(matches!(
        now(cp.sign(&key, &wrong)),
        Err(Error::Verification(_))
    ));
    assert!(attach_signature(&cp.to_text(), &key, [0; 64]).is_err());
    // A text that is not a note text is refused before signing.
    let right = Remote {
        answer: Ok(Ed25519NoteSigner::from_seed([1; 32])),
    };
    assert!(matches!(
        now(sign_note("no final newline", &key, &right)),
        Err(Error::MalformedNote(_))
    ));
}

#[test]
fn root_hash_base64_round_trips() {
    let h = Hash([0xab; 32]);
    let cp = Checkpoint::new(ORIGIN, 1, h).unwrap();
    assert_eq!(
        Checkpoint::parse(cp.to_text().as_bytes()).unwrap().root(),
        h
    );
}
