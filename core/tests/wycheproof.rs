//! Wycheproof vectors (C2SP/wycheproof), run through the `sotto_core::crypto` wrappers rather
//! than the crates underneath, so that what is checked is the code the protocol calls: its
//! length checks, error mapping, zero-secret refusal and strict signature verification.

mod common;

use std::collections::BTreeMap;

use serde::Deserialize;
use sotto_core::Error;
use sotto_core::crypto::aead::{self, AeadKey, Nonce, XNonce};
use sotto_core::crypto::agreement::{AgreementPublicKey, AgreementSecret};
use sotto_core::crypto::hkdf;
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::{Signature, VerifyingKey};

use common::hex_bytes;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File<G> {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<G>,
}

#[derive(Deserialize)]
struct Group<T> {
    tests: Vec<Case<T>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Valid,
    Acceptable,
    Invalid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case<T> {
    tc_id: u32,
    comment: String,
    flags: Vec<String>,
    result: Expect,
    #[serde(flatten)]
    data: T,
}

impl<T> Case<T> {
    fn describe(&self, got: &str) -> String {
        format!(
            "tcId {} ({:?}, {:?}, flags {:?}): got {got}",
            self.tc_id, self.result, self.comment, self.flags
        )
    }
}

/// Counts cases by expected result and by how our wrapper handled them, and collects every
/// mismatch so one run reports all of them.
struct Tally {
    file: &'static str,
    by_result: BTreeMap<Expect, usize>,
    by_outcome: BTreeMap<(Expect, &'static str), usize>,
    failures: Vec<String>,
}

impl Tally {
    fn new(file: &'static str) -> Self {
        Tally {
            file,
            by_result: BTreeMap::new(),
            by_outcome: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    fn record<T>(&mut self, case: &Case<T>, outcome: Result<&'static str, String>) {
        *self.by_result.entry(case.result).or_default() += 1;
        match outcome {
            Ok(how) => *self.by_outcome.entry((case.result, how)).or_default() += 1,
            Err(got) => self.failures.push(case.describe(&got)),
        }
    }

    fn finish<G>(self, file: &File<G>) {
        let total: usize = self.by_result.values().sum();
        println!(
            "{} ({}): {total} cases, {:?}",
            self.file, file.algorithm, self.by_result
        );
        for ((result, how), n) in &self.by_outcome {
            println!("    {result:?} {how}: {n}");
        }
        assert!(total > 0, "{}: no test vectors found", self.file);
        assert_eq!(
            total, file.number_of_tests,
            "{}: parsed case count differs from numberOfTests",
            self.file
        );
        assert!(
            self.failures.is_empty(),
            "{}: {} of {total} cases failed:\n{}",
            self.file,
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn cases<T>(file: &File<Group<T>>) -> impl Iterator<Item = &Case<T>> {
    file.test_groups.iter().flat_map(|g| &g.tests)
}

#[derive(Deserialize)]
struct XdhCase {
    #[serde(deserialize_with = "hex_bytes")]
    public: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    private: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    shared: Vec<u8>,
}

#[test]
fn x25519() {
    let file: File<Group<XdhCase>> = common::load("wycheproof/x25519_test.json");
    let mut tally = Tally::new("x25519_test.json");
    for case in cases(&file) {
        let d = &case.data;
        let got = SecretBytes::<32>::from_slice(&d.private).and_then(|sk| {
            AgreementSecret::from_secret_bytes(&sk)
                .agree(&AgreementPublicKey::from_slice(&d.public)?)
        });
        let zero = d.shared.iter().all(|&b| b == 0);
        let outcome = match (case.result, got) {
            (Expect::Valid | Expect::Acceptable, Ok(s))
                if !zero && s.expose()[..] == d.shared[..] =>
            {
                Ok("shared secret matches")
            }
            // Low-order public keys give an all-zero secret; our wrapper refuses it (RFC 7748
            // §6.1) so a peer cannot force a known key.
            (Expect::Acceptable, Err(Error::NonContributory)) if zero => {
                Ok("zero shared secret refused (NonContributory)")
            }
            (Expect::Invalid, Err(_)) => Ok("rejected"),
            (_, got) => Err(format!("{:?}", got.map(|s| hex::encode(s.expose())))),
        };
        tally.record(case, outcome);
    }
    tally.finish(&file);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EddsaGroup {
    public_key: EddsaKey,
    tests: Vec<Case<EddsaCase>>,
}

#[derive(Deserialize)]
struct EddsaKey {
    #[serde(deserialize_with = "hex_bytes")]
    pk: Vec<u8>,
}

#[derive(Deserialize)]
struct EddsaCase {
    #[serde(deserialize_with = "hex_bytes")]
    msg: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    sig: Vec<u8>,
}

#[test]
fn ed25519() {
    let file: File<EddsaGroup> = common::load("wycheproof/ed25519_test.json");
    let mut tally = Tally::new("ed25519_test.json");
    for group in &file.test_groups {
        let key = VerifyingKey::from_slice(&group.public_key.pk);
        for case in &group.tests {
            let d = &case.data;
            let got =
                key.and_then(|k| k.verify_unlabelled(&d.msg, &Signature::from_slice(&d.sig)?));
            let outcome = match (case.result, got) {
                (Expect::Valid, Ok(())) => Ok("signature verifies"),
                (Expect::Invalid, Err(Error::InvalidPublicKey)) => Ok("public key refused"),
                (Expect::Invalid, Err(Error::BadSignature)) => Ok("signature rejected"),
                (Expect::Acceptable, Ok(())) => Ok("accepted"),
                (Expect::Acceptable, Err(_)) => Ok("rejected"),
                (_, got) => Err(format!("{got:?}")),
            };
            tally.record(case, outcome);
        }
    }
    tally.finish(&file);
}

#[derive(Deserialize)]
struct AeadCase {
    #[serde(deserialize_with = "hex_bytes")]
    key: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    iv: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    aad: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    msg: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    ct: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    tag: Vec<u8>,
}

type AeadFn = fn(&AeadKey, &[u8], &[u8], &[u8]) -> sotto_core::Result<Vec<u8>>;

/// Runs one AEAD file; `seal` and `open` take the nonce as raw bytes so that the wrapper's own
/// nonce type decides which lengths are refused.
fn aead_file(name: &'static str, seal: AeadFn, open: AeadFn) {
    let file: File<Group<AeadCase>> = common::load(&format!("wycheproof/{name}"));
    let mut tally = Tally::new(name);
    for case in cases(&file) {
        let d = &case.data;
        let sealed = [&d.ct[..], &d.tag[..]].concat();
        let (resealed, opened) = match AeadKey::from_slice(&d.key) {
            Ok(k) => (
                seal(&k, &d.iv, &d.aad, &d.msg),
                open(&k, &d.iv, &d.aad, &sealed),
            ),
            Err(e) => (Err(e), Err(e)),
        };
        let outcome = match (case.result, &resealed, &opened) {
            (Expect::Valid, Ok(c), Ok(m)) if *c == sealed && *m == d.msg => {
                Ok("seal and open match")
            }
            (Expect::Invalid, Err(Error::InvalidLength), Err(Error::InvalidLength)) => {
                Ok("key or nonce length refused")
            }
            // Our seal must not produce the modified ciphertext either, or the case would not
            // be testing the tag check.
            (Expect::Invalid, Ok(c), Err(Error::DecryptionFailed)) if *c != sealed => {
                Ok("open rejects the ciphertext")
            }
            _ => Err(format!(
                "seal {:?}, open {:?}",
                resealed.map(hex::encode),
                opened.map(hex::encode)
            )),
        };
        tally.record(case, outcome);
    }
    tally.finish(&file);
}

#[test]
fn chacha20_poly1305() {
    aead_file(
        "chacha20_poly1305_test.json",
        |k, n, aad, m| Ok(aead::seal(k, &Nonce::from_slice(n)?, aad, m)),
        |k, n, aad, c| aead::open(k, &Nonce::from_slice(n)?, aad, c),
    );
}

#[test]
fn xchacha20_poly1305() {
    aead_file(
        "xchacha20_poly1305_test.json",
        |k, n, aad, m| Ok(aead::xseal(k, &XNonce::from_slice(n)?, aad, m)),
        |k, n, aad, c| aead::xopen(k, &XNonce::from_slice(n)?, aad, c),
    );
}

#[derive(Deserialize)]
struct HkdfCase {
    #[serde(deserialize_with = "hex_bytes")]
    ikm: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    salt: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    info: Vec<u8>,
    size: usize,
    #[serde(deserialize_with = "hex_bytes")]
    okm: Vec<u8>,
}

#[test]
fn hkdf_sha256() {
    let file: File<Group<HkdfCase>> = common::load("wycheproof/hkdf_sha256_test.json");
    let mut tally = Tally::new("hkdf_sha256_test.json");
    for case in cases(&file) {
        let d = &case.data;
        let mut okm = vec![0u8; d.size];
        let outcome = match (
            case.result,
            hkdf::derive(&d.salt, &d.ikm, &d.info, &mut okm),
        ) {
            (Expect::Valid, Ok(())) if okm == d.okm => Ok("output matches"),
            (Expect::Invalid, Err(Error::InvalidLength)) => Ok("oversized output refused"),
            (_, got) => Err(format!("{:?}", got.map(|()| hex::encode(&okm)))),
        };
        tally.record(case, outcome);
    }
    tally.finish(&file);
}
