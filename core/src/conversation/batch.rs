//! Opening many messages at once, for bulk history (DESIGN 4.4).
//!
//! Signatures are checked together with Ed25519 batch verification, which costs a fraction of
//! checking them one by one. If the batch fails, each signature is checked on its own to name the
//! messages at fault, so one bad message never hides the good ones. Only then is anything
//! decrypted, in counter order so history arriving newest-first does not exhaust the skipped-key
//! limits.
//!
//! Batch verification (ed25519-dalek's `verify_batch`, deterministic: its coefficients come
//! from a transcript of the batch, so no RNG is needed) accepts every signature that strict
//! single verification accepts. It may also accept a signature whose `R` has a small-order
//! component, which strict verification refuses; only the holder of the sender's private key can
//! make one, so this is not a forgery, but such a message could open here and fail when received
//! live. `docs/PROTOCOL.md` §7.5 states this.

use super::message::{MessageContext, OpenedMessage, ParsedMessage, STATEMENT_LEN};
use super::ratchet::ReceiverChain;
use crate::crypto::sign::{SignatureContext, VerifyingKey, verify_batch};
use crate::device::DeviceId;
use crate::error::MessageError;
use crate::{Error, Result};

/// Verifies and decrypts `messages`, returning one result per message, in input order.
///
/// `senders` are the identity keys of the devices that may have sent them (a message from any
/// other device is [`MessageError::UnknownSender`]); `contexts` the epochs they may belong to
/// (a message of an epoch with none is [`MessageError::WrongChain`]); `chains` the receiver
/// chains to decrypt with (a message with none is [`MessageError::WrongChain`]). Signatures are
/// all checked before any chain is touched; a message that fails leaves its chain unchanged.
pub fn open_batch(
    messages: Vec<ParsedMessage>,
    senders: &[VerifyingKey],
    contexts: &[MessageContext],
    chains: &mut [ReceiverChain],
) -> Vec<Result<OpenedMessage>> {
    let ids: Vec<DeviceId> = senders.iter().map(DeviceId::from_identity).collect();
    let key_of: Vec<Option<usize>> = messages
        .iter()
        .map(|m| ids.iter().position(|id| *id == m.header().sender))
        .collect();
    let context_of: Vec<Option<MessageContext>> = messages
        .iter()
        .map(|m| {
            let h = m.header();
            contexts
                .iter()
                .find(|c| c.conversation == h.conversation && c.epoch == h.epoch)
                .copied()
        })
        .collect();
    let checks = verify_signatures(&messages, &key_of, &context_of, senders);

    let mut results: Vec<Option<Result<OpenedMessage>>> = checks
        .iter()
        .map(|c| c.as_ref().err().map(|e| Err(*e)))
        .collect();
    let mut order: Vec<usize> = (0..messages.len())
        .filter(|&i| matches!(checks.get(i), Some(Ok(()))))
        .collect();
    order.sort_by_key(|&i| messages.get(i).map_or(0, |m| m.header().counter));

    let mut pending: Vec<Option<ParsedMessage>> = messages.into_iter().map(Some).collect();
    for i in order {
        let (Some(message), Some(Some(context))) =
            (pending.get_mut(i).and_then(Option::take), context_of.get(i))
        else {
            continue;
        };
        let id = message.header().chain();
        let opened = match chains.iter_mut().find(|c| *c.id() == id) {
            Some(chain) => message.into_verified(*context).decrypt(chain),
            None => Err(MessageError::WrongChain.into()),
        };
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(opened);
        }
    }
    results
        .into_iter()
        // Every slot was filled above; a gap would be a bug, reported rather than panicking.
        .map(|r| r.unwrap_or(Err(Error::BadSignature)))
        .collect()
}

/// One result per message: batch first, one by one if the batch fails or is too small to gain.
fn verify_signatures(
    messages: &[ParsedMessage],
    key_of: &[Option<usize>],
    context_of: &[Option<MessageContext>],
    senders: &[VerifyingKey],
) -> Vec<Result<()>> {
    let known = key_of
        .iter()
        .zip(context_of)
        .filter(|(k, c)| k.is_some() && c.is_some())
        .count();
    let batch_ok = known >= 2 && batch_verifies(messages, key_of, context_of, senders);
    messages
        .iter()
        .zip(key_of.iter().zip(context_of))
        .map(|(m, (k, c))| match (k.and_then(|k| senders.get(k)), c) {
            (None, _) => Err(MessageError::UnknownSender.into()),
            (Some(_), None) => Err(MessageError::WrongChain.into()),
            (Some(_), Some(_)) if batch_ok => Ok(()),
            (Some(key), Some(context)) => m.check_signature(key, context),
        })
        .collect()
}

/// Whether every message with a known sender and epoch carries a valid signature, checked as
/// one batch.
fn batch_verifies(
    messages: &[ParsedMessage],
    key_of: &[Option<usize>],
    context_of: &[Option<MessageContext>],
    senders: &[VerifyingKey],
) -> bool {
    let mut statements: Vec<[u8; STATEMENT_LEN]> = Vec::with_capacity(messages.len());
    let mut signers = Vec::with_capacity(messages.len());
    for ((message, k), c) in messages.iter().zip(key_of).zip(context_of) {
        let (Some(k), Some(context)) = (*k, c) else {
            continue;
        };
        let Some(sender) = senders.get(k) else {
            return false;
        };
        statements.push(message.statement(context));
        signers.push((sender, message.signature()));
    }
    let items: Vec<_> = signers
        .into_iter()
        .zip(&statements)
        .map(|((sender, signature), statement)| (sender, statement.as_slice(), signature))
        .collect();
    verify_batch(SignatureContext::Message, &items).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::message::tests::{Party, context, party, receiver};
    use super::super::{MessageKind, Stream};
    use super::*;
    use crate::crypto::sign::SignatureContext;
    use crate::device::DeviceKind;

    fn parse(all: &[Vec<u8>]) -> Vec<ParsedMessage> {
        all.iter()
            .map(|b| ParsedMessage::decode(b).unwrap())
            .collect()
    }

    fn texts(p: &mut Party, n: usize, tag: &str) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| p.send(MessageKind::Text, format!("{tag}{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn a_shuffled_history_opens_in_input_order_without_gaps() {
        let mut alice = party(20, DeviceKind::Visitor);
        let mut bob = party(21, DeviceKind::Member);
        let a = texts(&mut alice, 12, "a");
        let b = texts(&mut bob, 7, "b");
        let typing = alice.send(MessageKind::Typing, b"...");
        // Newest first, interleaved.
        let mut all: Vec<(Vec<u8>, String)> = Vec::new();
        for i in (0..12).rev() {
            all.push((a[i].clone(), format!("a{i}")));
            if i < 7 {
                all.push((b[i].clone(), format!("b{i}")));
            }
        }
        all.push((typing, "...".into()));
        let mut chains = vec![
            receiver(&alice, Stream::Durable),
            receiver(&bob, Stream::Durable),
            receiver(&alice, Stream::Ephemeral),
        ];
        let bytes: Vec<Vec<u8>> = all.iter().map(|(b, _)| b.clone()).collect();
        let results = open_batch(
            parse(&bytes),
            &[bob.key(), alice.key()],
            &[context()],
            &mut chains,
        );
        assert_eq!(results.len(), all.len());
        for (r, (_, expected)) in results.iter().zip(&all) {
            let opened = r.as_ref().unwrap();
            assert_eq!(opened.content(), expected.as_bytes());
            assert!(opened.gap().is_empty(), "{expected}");
        }
        assert_eq!(chains[0].next_counter(), 12);
        assert_eq!(chains[1].next_counter(), 7);
        assert_eq!(chains[2].next_counter(), 1);
    }

    #[test]
    fn a_bad_signature_is_named_and_the_rest_still_open() {
        let mut alice = party(22, DeviceKind::Visitor);
        let bob = party(23, DeviceKind::Member);
        let mut all = texts(&mut alice, 6, "a");
        // Flip a ciphertext bit of message 2: its signature no longer verifies.
        all[2][100] ^= 1;
        // Message 4 re-signed by Bob: valid Ed25519, wrong signer.
        let len = all[4].len();
        let sig = bob
            .device
            .sign(SignatureContext::Message, &all[4][..len - 64]);
        all[4][len - 64..].copy_from_slice(sig.as_bytes());
        let mut chains = vec![receiver(&alice, Stream::Durable)];
        let results = open_batch(
            parse(&all),
            &[alice.key(), bob.key()],
            &[context()],
            &mut chains,
        );
        for (i, r) in results.iter().enumerate() {
            match i {
                2 | 4 => assert_eq!(r.as_ref().unwrap_err(), &Error::BadSignature, "{i}"),
                _ => assert_eq!(r.as_ref().unwrap().content(), format!("a{i}").as_bytes()),
            }
        }
        // The refused counters stay open for the genuine messages.
        assert_eq!(chains[0].missing().collect::<Vec<_>>(), vec![2, 4]);
    }

    #[test]
    fn unknown_senders_missing_chains_and_duplicates_are_reported_per_message() {
        let mut alice = party(24, DeviceKind::Visitor);
        let mut carol = party(25, DeviceKind::Member);
        let mut dave = party(26, DeviceKind::Member);
        let a = texts(&mut alice, 2, "a");
        let c = texts(&mut carol, 1, "c");
        let d = texts(&mut dave, 1, "d");
        let all = vec![
            a[0].clone(),
            c[0].clone(),
            a[0].clone(),
            d[0].clone(),
            a[1].clone(),
        ];
        let mut chains = vec![
            receiver(&alice, Stream::Durable),
            receiver(&carol, Stream::Durable),
        ];
        let results = open_batch(
            parse(&all),
            &[alice.key(), dave.key()],
            &[context()],
            &mut chains,
        );
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err(),
            &Error::Message(MessageError::UnknownSender)
        );
        assert_eq!(
            results[2].as_ref().unwrap_err(),
            &Error::Message(MessageError::Duplicate)
        );
        assert_eq!(
            results[3].as_ref().unwrap_err(),
            &Error::Message(MessageError::WrongChain)
        );
        assert_eq!(results[4].as_ref().unwrap().content(), b"a1");
        assert_eq!(chains[1].next_counter(), 0);
    }

    #[test]
    fn single_and_empty_batches_work() {
        let mut alice = party(27, DeviceKind::Visitor);
        let one = texts(&mut alice, 1, "a");
        let mut chains = vec![receiver(&alice, Stream::Durable)];
        assert!(open_batch(Vec::new(), &[alice.key()], &[context()], &mut chains).is_empty());
        let results = open_batch(parse(&one), &[alice.key()], &[context()], &mut chains);
        assert_eq!(results[0].as_ref().unwrap().content(), b"a0");
        let mut tampered = one[0].clone();
        tampered[100] ^= 4;
        let results = open_batch(
            parse(&[tampered]),
            &[alice.key()],
            &[context()],
            &mut chains,
        );
        assert_eq!(results[0].as_ref().unwrap_err(), &Error::BadSignature);
    }
}
