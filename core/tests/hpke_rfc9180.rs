//! RFC 9180 test vectors for DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, run
//! through `sotto_core::crypto::hpke` on both the receiver and the sender side.

mod common;

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use serde::Deserialize;
use sotto_core::Error;
use sotto_core::crypto::agreement::{AgreementPublicKey, AgreementSecret};
use sotto_core::crypto::hpke::{self, ENC_LEN, ReceiverContext, SenderContext};

use common::hex_bytes;

const FILE: &str = "hpke/rfc9180_x25519_hkdfsha256_chacha20poly1305.json";

const MODE_BASE: u8 = 0;
const MODE_PSK: u8 = 1;
const MODE_AUTH: u8 = 2;
const MODE_AUTH_PSK: u8 = 3;

#[derive(Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    #[serde(deserialize_with = "hex_bytes")]
    info: Vec<u8>,
    #[serde(rename = "ikmR", deserialize_with = "hex_bytes")]
    ikm_r: Vec<u8>,
    #[serde(rename = "ikmE", deserialize_with = "hex_bytes")]
    ikm_e: Vec<u8>,
    #[serde(rename = "ikmS", default, deserialize_with = "hex_bytes_opt")]
    ikm_s: Option<Vec<u8>>,
    #[serde(rename = "skRm", deserialize_with = "hex_bytes")]
    sk_rm: Vec<u8>,
    #[serde(rename = "pkRm", deserialize_with = "hex_bytes")]
    pk_rm: Vec<u8>,
    #[serde(rename = "skSm", default, deserialize_with = "hex_bytes_opt")]
    sk_sm: Option<Vec<u8>>,
    #[serde(rename = "pkSm", default, deserialize_with = "hex_bytes_opt")]
    pk_sm: Option<Vec<u8>>,
    #[serde(rename = "skEm", deserialize_with = "hex_bytes")]
    sk_em: Vec<u8>,
    #[serde(rename = "pkEm", deserialize_with = "hex_bytes")]
    pk_em: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    enc: Vec<u8>,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Encryption {
    #[serde(deserialize_with = "hex_bytes")]
    aad: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    ct: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    pt: Vec<u8>,
}

#[derive(Deserialize)]
struct Export {
    #[serde(deserialize_with = "hex_bytes")]
    exporter_context: Vec<u8>,
    #[serde(rename = "L")]
    len: usize,
    #[serde(deserialize_with = "hex_bytes")]
    exported_value: Vec<u8>,
}

fn hex_bytes_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    hex_bytes(d).map(Some)
}

/// Hands out the vector's ikmE, so the sender's ephemeral key is the one the RFC used. It
/// panics when drained: the wrapper must draw exactly one key's worth of randomness.
struct IkmRng<'a>(&'a [u8]);

impl TryRng for IkmRng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(dst.len() <= self.0.len(), "sender drew more than ikmE");
        let (head, rest) = self.0.split_at(dst.len());
        dst.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }
}

impl TryCryptoRng for IkmRng<'_> {}

fn check_derived(ikm: &[u8], sk: &[u8], pk: &[u8], what: &str) -> AgreementSecret {
    let secret = hpke::derive_key_pair(ikm);
    assert_eq!(
        hex::encode(secret.to_secret_bytes().expose()),
        hex::encode(sk),
        "{what}: secret key"
    );
    assert_eq!(
        hex::encode(secret.public_key().as_bytes()),
        hex::encode(pk),
        "{what}: public key"
    );
    secret
}

fn check_exports(v: &Vector, export: impl Fn(&[u8], &mut [u8]) -> sotto_core::Result<()>) {
    for (i, e) in v.exports.iter().enumerate() {
        let mut out = vec![0u8; e.len];
        export(&e.exporter_context, &mut out).unwrap_or_else(|err| panic!("export {i}: {err:?}"));
        assert_eq!(
            hex::encode(&out),
            hex::encode(&e.exported_value),
            "export {i}"
        );
    }
}

#[derive(Default)]
struct Counts {
    cases: usize,
    encryptions: usize,
    exports: usize,
}

#[test]
fn rfc9180_vectors() {
    let vectors: Vec<Vector> = common::load(FILE);
    let mut handled = [MODE_BASE, MODE_AUTH].map(|m| (m, Counts::default()));
    let mut skipped = [MODE_PSK, MODE_AUTH_PSK].map(|m| (m, 0usize));

    for v in &vectors {
        assert_eq!((v.kem_id, v.kdf_id, v.aead_id), (0x0020, 0x0001, 0x0003));
        if let Some((_, n)) = skipped.iter_mut().find(|(m, _)| *m == v.mode) {
            // Our wrapper exposes only base and auth modes: the protocol has no pre-shared keys.
            *n += 1;
            continue;
        }
        let (_, counts) = handled
            .iter_mut()
            .find(|(m, _)| *m == v.mode)
            .unwrap_or_else(|| panic!("unknown HPKE mode {}", v.mode));

        let recipient = check_derived(&v.ikm_r, &v.sk_rm, &v.pk_rm, "ikmR");
        check_derived(&v.ikm_e, &v.sk_em, &v.pk_em, "ikmE");
        let sender = match (&v.ikm_s, &v.sk_sm, &v.pk_sm) {
            (Some(ikm), Some(sk), Some(pk)) => Some(check_derived(ikm, sk, pk, "ikmS")),
            _ => None,
        };
        assert_eq!(sender.is_some(), v.mode == MODE_AUTH, "sender key present");
        let enc: [u8; ENC_LEN] = v.enc.as_slice().try_into().expect("enc is 32 bytes");
        let pk_r = recipient.public_key();

        let receiver = || -> sotto_core::Result<ReceiverContext> {
            match &sender {
                Some(s) => hpke::setup_auth_receiver(&recipient, &enc, &s.public_key(), &v.info),
                None => hpke::setup_base_receiver(&recipient, &enc, &v.info),
            }
        };

        let mut rx = receiver().expect("receiver setup");
        for (i, e) in v.encryptions.iter().enumerate() {
            let pt = rx
                .open(&e.aad, &e.ct)
                .unwrap_or_else(|err| panic!("mode {} open {i}: {err:?}", v.mode));
            assert_eq!(
                hex::encode(pt),
                hex::encode(&e.pt),
                "mode {} open {i}",
                v.mode
            );
        }
        check_exports(v, |c, o| rx.export(c, o));

        let mut rng = IkmRng(&v.ikm_e);
        let (sent_enc, mut tx): ([u8; ENC_LEN], SenderContext) = match &sender {
            Some(s) => hpke::setup_auth_sender(&mut rng, &pk_r, s, &v.info),
            None => hpke::setup_base_sender(&mut rng, &pk_r, &v.info),
        }
        .expect("sender setup");
        assert!(rng.0.is_empty(), "sender left part of ikmE unused");
        assert_eq!(
            hex::encode(sent_enc),
            hex::encode(enc),
            "mode {} enc",
            v.mode
        );
        for (i, e) in v.encryptions.iter().enumerate() {
            let ct = tx
                .seal(&e.aad, &e.pt)
                .unwrap_or_else(|err| panic!("mode {} seal {i}: {err:?}", v.mode));
            assert_eq!(
                hex::encode(ct),
                hex::encode(&e.ct),
                "mode {} seal {i}",
                v.mode
            );
        }
        check_exports(v, |c, o| tx.export(c, o));

        let first = &v.encryptions[0];
        for bit in [0, first.ct.len() * 8 / 2, first.ct.len() * 8 - 1] {
            let mut tampered = first.ct.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            let mut rx = receiver().expect("receiver setup");
            assert_eq!(
                rx.open(&first.aad, &tampered),
                Err(Error::DecryptionFailed),
                "mode {} bit {bit} flipped",
                v.mode
            );
            // A failed open must not advance the sequence number (RFC 9180 §5.2).
            assert_eq!(rx.open(&first.aad, &first.ct).as_deref(), Ok(&first.pt[..]));
        }
        if let Some(s) = &sender {
            // Auth mode binds the sender: the right ciphertext under a wrong claimed sender fails.
            let impostor: AgreementPublicKey = pk_r;
            assert_ne!(impostor, s.public_key());
            let mut rx = hpke::setup_auth_receiver(&recipient, &enc, &impostor, &v.info)
                .expect("receiver setup");
            assert_eq!(rx.open(&first.aad, &first.ct), Err(Error::DecryptionFailed));
        }

        counts.cases += 1;
        counts.encryptions += v.encryptions.len();
        counts.exports += v.exports.len();
    }

    for (mode, c) in &handled {
        println!(
            "{FILE}: mode {mode}: {} test case(s), {} encryptions opened and sealed, {} exports",
            c.cases, c.encryptions, c.exports
        );
        assert!(
            c.cases > 0 && c.encryptions > 0 && c.exports > 0,
            "no vectors for mode {mode}"
        );
    }
    for (mode, n) in &skipped {
        println!("{FILE}: mode {mode}: {n} test case(s) skipped (PSK modes not exposed)");
    }
}
