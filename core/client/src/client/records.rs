//! Where the client keeps its state in the store, and the encoding of each record.
//!
//! Record keys are built only from random ids, counters and fixed labels (the store reveals
//! keys): team and conversation ids, device ids, big-endian epoch numbers, counters and cursors,
//! so keys sort in protocol order. Values use the core's length-checked codec; stored message
//! content is padded like wire messages so record sizes reveal no more than the relay sees.

use sotto_core::codec::{Reader, Writer};
use sotto_core::conversation::padding;
use sotto_core::conversation::{ConversationId, Instance, MessageKind, Stream};
use sotto_core::device::DeviceId;
use sotto_core::team::{LinkHash, TeamId};
use zeroize::Zeroizing;

use crate::store::{Namespace, RecordId};
use crate::{Error, Result};

/// Largest stored content (a message's content, or an attachment reference plus its blob id).
pub(crate) const MAX_STORED_CONTENT: usize = sotto_core::conversation::message::MAX_CONTENT_LEN;
const FORMAT: u8 = 1;

/// The namespaces of the client's records; a backup holds all of them.
pub(crate) const NAMESPACES: [&str; 12] = [
    ACCOUNT,
    TEAM,
    LINK,
    CONV,
    EPOCH,
    EPOCH_HELD,
    SEND_CHAIN,
    RECV_CHAIN,
    MESSAGE,
    HELD_MESSAGE,
    OUTBOX,
    MINE,
];
pub(crate) const ACCOUNT: &str = "account";
pub(crate) const TEAM: &str = "team";
pub(crate) const LINK: &str = "team.link";
pub(crate) const CONV: &str = "conv";
pub(crate) const EPOCH: &str = "conv.epoch";
/// Epoch records not accepted: held until an active participant's record follows them, or
/// refused for good (so the next fetch starts after them).
pub(crate) const EPOCH_HELD: &str = "conv.epoch.held";
/// Messages kept aside until the record closing their epoch says whether they belong to it.
pub(crate) const HELD_MESSAGE: &str = "msg.held";
pub(crate) const SEND_CHAIN: &str = "chain.send";
pub(crate) const RECV_CHAIN: &str = "chain.recv";
pub(crate) const MESSAGE: &str = "msg";
pub(crate) const OUTBOX: &str = "outbox";
/// Own durable messages the relay stored: `(epoch, counter)` to cursor, to recognise them when
/// they come back in a listing (also after a retried post stored them twice).
pub(crate) const MINE: &str = "mine";

pub(crate) fn ns(name: &str) -> Result<Namespace> {
    Namespace::new(name)
}

pub(crate) fn id(namespace: &str, key: Vec<u8>) -> Result<RecordId> {
    RecordId::new(&ns(namespace)?, key)
}

pub(crate) fn account_id() -> Result<RecordId> {
    id(ACCOUNT, b"device".to_vec())
}

pub(crate) fn team_id(team: &TeamId) -> Result<RecordId> {
    id(TEAM, team.0.to_vec())
}

pub(crate) fn link_id(team: &TeamId, seq: u64) -> Result<RecordId> {
    let mut k = team.0.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    id(LINK, k)
}

pub(crate) fn conv_id(conv: &ConversationId) -> Result<RecordId> {
    id(CONV, conv.0.to_vec())
}

fn conv_key(conv: &ConversationId, rest: &[&[u8]]) -> Vec<u8> {
    let mut k = conv.0.to_vec();
    for part in rest {
        k.extend_from_slice(part);
    }
    k
}

pub(crate) fn epoch_id(conv: &ConversationId, epoch: u32) -> Result<RecordId> {
    id(EPOCH, conv_key(conv, &[&epoch.to_be_bytes()]))
}

pub(crate) fn epoch_held_id(conv: &ConversationId, epoch: u32) -> Result<RecordId> {
    id(EPOCH_HELD, conv_key(conv, &[&epoch.to_be_bytes()]))
}

pub(crate) fn held_message_id(conv: &ConversationId, epoch: u32, cursor: u64) -> Result<RecordId> {
    id(
        HELD_MESSAGE,
        conv_key(conv, &[&epoch.to_be_bytes(), &cursor.to_be_bytes()]),
    )
}

/// This installation's sender chain: `conversation || epoch || instance || stream`. Keys of
/// chains from before instances existed (no instance) are never read again.
pub(crate) fn send_chain_id(
    conv: &ConversationId,
    epoch: u32,
    instance: &Instance,
    stream: Stream,
) -> Result<RecordId> {
    id(
        SEND_CHAIN,
        conv_key(
            conv,
            &[&epoch.to_be_bytes(), &instance.0, &[stream.to_byte()]],
        ),
    )
}

/// A receiver chain: `conversation || epoch || sender || instance || stream`.
pub(crate) fn recv_chain_id(
    conv: &ConversationId,
    epoch: u32,
    sender: &DeviceId,
    instance: &Instance,
    stream: Stream,
) -> Result<RecordId> {
    id(
        RECV_CHAIN,
        conv_key(
            conv,
            &[
                &epoch.to_be_bytes(),
                &sender.0,
                &instance.0,
                &[stream.to_byte()],
            ],
        ),
    )
}

/// The prefix of the receiver chains of one sender in one epoch, all its instances.
pub(crate) fn recv_chain_prefix(conv: &ConversationId, epoch: u32, sender: &DeviceId) -> Vec<u8> {
    conv_key(conv, &[&epoch.to_be_bytes(), &sender.0])
}

pub(crate) fn message_id(conv: &ConversationId, cursor: u64) -> Result<RecordId> {
    id(MESSAGE, conv_key(conv, &[&cursor.to_be_bytes()]))
}

pub(crate) fn outbox_id(conv: &ConversationId, epoch: u32, counter: u32) -> Result<RecordId> {
    id(
        OUTBOX,
        conv_key(conv, &[&epoch.to_be_bytes(), &counter.to_be_bytes()]),
    )
}

pub(crate) fn mine_id(conv: &ConversationId, epoch: u32, counter: u32) -> Result<RecordId> {
    id(
        MINE,
        conv_key(conv, &[&epoch.to_be_bytes(), &counter.to_be_bytes()]),
    )
}

fn corrupt(_: sotto_core::Error) -> Error {
    Error::Corrupt("malformed client record")
}

fn reader_finish(r: &Reader<'_>) -> Result<()> {
    r.finish().map_err(corrupt)
}

/// Format of the account record since it holds the installation's instance.
const ACCOUNT_FORMAT: u8 = 2;

/// The registered device, where it is registered, and this installation of it.
pub(crate) struct Account {
    pub relay: String,
    pub widget_id: [u8; 16],
    pub device_secrets: Zeroizing<Vec<u8>>,
    /// This installation's instance (PROTOCOL §7.2); `None` in a record of format 1, written
    /// before instances existed (the client then chooses one and stores it).
    pub instance: Option<Instance>,
}

impl Account {
    /// Always the current format: `2 || relay || widget_id || device_secrets || instance[8]`.
    pub fn encode(&self, instance: &Instance) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(ACCOUNT_FORMAT);
        w.bytes_u16(self.relay.as_bytes());
        w.array(&self.widget_id);
        w.bytes_u32(&self.device_secrets);
        w.array(&instance.0);
        Zeroizing::new(w.into_bytes())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let format = r.u8().map_err(corrupt)?;
        if format != FORMAT && format != ACCOUNT_FORMAT {
            return Err(Error::Corrupt("unknown account record format"));
        }
        let relay = r.string_u16(2048).map_err(corrupt)?;
        let widget_id = r.array().map_err(corrupt)?;
        let device_secrets = Zeroizing::new(r.bytes_u32(64 * 1024).map_err(corrupt)?.to_vec());
        let instance = match format {
            ACCOUNT_FORMAT => Some(Instance(r.array().map_err(corrupt)?)),
            _ => None,
        };
        reader_finish(&r)?;
        Ok(Account {
            relay,
            widget_id,
            device_secrets,
            instance,
        })
    }
}

/// Longest stored verified team state (PROTOCOL §6.9) a team record may hold.
const MAX_VERIFIED_STATE: usize = 64 << 20;
/// Longest stored keyring (a 4-byte count and 36 bytes per generation).
const MAX_STORED_KEYRING: usize = 6 + 36 * sotto_core::team::keys::MAX_HELD_GENERATIONS;
/// Tags of the team record's optional fields, each at most once and in this order.
const TEAM_WITNESS_PIN: u8 = 1;
const TEAM_VERIFIED: u8 = 2;

/// A team this client follows: the fingerprint it was pinned to, the witness key its reference
/// pinned, and, once it verified links, the verified state and this device's keyring at its
/// head, so a start applies only the links stored after that head instead of replaying the
/// chain.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TeamRecord {
    pub fingerprint: LinkHash,
    /// The freshness witness key the team reference given out of band pins (PROTOCOL §6.8).
    pub witness_pin: Option<[u8; 32]>,
    /// `TeamState::export` and `TeamKeyring::export` at the same head.
    pub verified: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl TeamRecord {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(FORMAT);
        w.put(&self.fingerprint);
        // Optional fields are appended only when present, so older records still read.
        if let Some(key) = &self.witness_pin {
            w.u8(TEAM_WITNESS_PIN);
            w.array(key);
        }
        if let Some((state, keyring)) = &self.verified {
            w.u8(TEAM_VERIFIED);
            w.bytes_u32(state);
            w.bytes_u32(keyring);
        }
        Zeroizing::new(w.into_bytes())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        if r.u8().map_err(corrupt)? != FORMAT {
            return Err(Error::Corrupt("unknown team record format"));
        }
        let fingerprint = r.get().map_err(corrupt)?;
        let mut witness_pin = None;
        let mut verified = None;
        let mut last_tag = 0;
        while r.remaining() > 0 {
            let tag = r.u8().map_err(corrupt)?;
            if tag <= last_tag {
                return Err(Error::Corrupt("unknown team record field"));
            }
            last_tag = tag;
            match tag {
                TEAM_WITNESS_PIN => witness_pin = Some(r.array().map_err(corrupt)?),
                TEAM_VERIFIED => {
                    let state = r.bytes_u32(MAX_VERIFIED_STATE).map_err(corrupt)?.to_vec();
                    let keyring = r.bytes_u32(MAX_STORED_KEYRING).map_err(corrupt)?;
                    verified = Some((state, Zeroizing::new(keyring.to_vec())));
                }
                _ => return Err(Error::Corrupt("unknown team record field")),
            }
        }
        reader_finish(&r)?;
        Ok(TeamRecord {
            fingerprint,
            witness_pin,
            verified,
        })
    }
}

impl core::fmt::Debug for TeamRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TeamRecord")
            .field("fingerprint", &self.fingerprint)
            .field("witness_pin", &self.witness_pin)
            .field("verified", &self.verified.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A conversation this client takes part in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConvRecord {
    pub team: TeamId,
    /// Whether this client is the conversation's visitor (else a team member).
    pub visitor: bool,
    /// Every envelope up to this cursor was processed.
    pub cursor: u64,
    /// The next durable message must open a new epoch (set after a restore, whose sender chains
    /// may be behind what the device already sent).
    pub needs_epoch: bool,
}

impl ConvRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(FORMAT);
        w.put(&self.team);
        w.u8(u8::from(self.visitor));
        w.u64(self.cursor);
        w.u8(u8::from(self.needs_epoch));
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        if r.u8().map_err(corrupt)? != FORMAT {
            return Err(Error::Corrupt("unknown conversation record format"));
        }
        let team = r.get().map_err(corrupt)?;
        let visitor = r.u8().map_err(corrupt)? != 0;
        let cursor = r.u64().map_err(corrupt)?;
        let needs_epoch = r.u8().map_err(corrupt)? != 0;
        reader_finish(&r)?;
        Ok(ConvRecord {
            team,
            visitor,
            cursor,
            needs_epoch,
        })
    }
}

/// A durable message as stored: who sent what, where in the protocol, and when.
#[derive(Clone)]
pub(crate) struct StoredMessage {
    pub sender: DeviceId,
    pub kind: MessageKind,
    pub epoch: u32,
    pub counter: u32,
    /// The relay's time of storage (own messages: the time they were queued).
    pub at: u64,
    pub content: Zeroizing<Vec<u8>>,
}

impl StoredMessage {
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let padded = padding::pad(&self.content, MAX_STORED_CONTENT)?;
        let mut w = Writer::with_capacity(64 + padded.len());
        w.u8(FORMAT);
        w.put(&self.sender);
        w.u8(self.kind.to_byte());
        w.u32(self.epoch);
        w.u32(self.counter);
        w.u64(self.at);
        w.bytes_u32(&padded);
        Ok(Zeroizing::new(w.into_bytes()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        if r.u8().map_err(corrupt)? != FORMAT {
            return Err(Error::Corrupt("unknown message record format"));
        }
        let sender = r.get().map_err(corrupt)?;
        let kind = MessageKind::from_byte(r.u8().map_err(corrupt)?).map_err(corrupt)?;
        let epoch = r.u32().map_err(corrupt)?;
        let counter = r.u32().map_err(corrupt)?;
        let at = r.u64().map_err(corrupt)?;
        let padded = r
            .bytes_u32(2 * MAX_STORED_CONTENT + 1024)
            .map_err(corrupt)?;
        let content = padding::unpad(padded, MAX_STORED_CONTENT).map_err(corrupt)?;
        let content = Zeroizing::new(content.to_vec());
        reader_finish(&r)?;
        Ok(StoredMessage {
            sender,
            kind,
            epoch,
            counter,
            at,
            content,
        })
    }
}

/// A sealed durable message waiting for the relay to store it.
pub(crate) struct Queued {
    pub message: StoredMessage,
    pub wire: Vec<u8>,
}

impl Queued {
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = Writer::new();
        w.bytes_u32(&self.message.encode()?);
        w.bytes_u32(&self.wire);
        Ok(Zeroizing::new(w.into_bytes()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let message = StoredMessage::decode(r.bytes_u32(4 * MAX_STORED_CONTENT).map_err(corrupt)?)?;
        let wire = r
            .bytes_u32(4 * MAX_STORED_CONTENT)
            .map_err(corrupt)?
            .to_vec();
        reader_finish(&r)?;
        Ok(Queued { message, wire })
    }
}

pub(crate) fn encode_cursor(cursor: u64) -> [u8; 8] {
    cursor.to_be_bytes()
}

pub(crate) fn decode_cursor(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt("malformed cursor record"))?;
    Ok(u64::from_be_bytes(arr))
}

/// The cursor a message record key ends with.
pub(crate) fn cursor_of_key(key: &[u8]) -> Result<u64> {
    let tail = key
        .get(16..24)
        .ok_or(Error::Corrupt("malformed message key"))?;
    decode_cursor(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_records_keep_the_instance_and_old_ones_still_open() {
        let account = Account {
            relay: "https://relay.example".into(),
            widget_id: [3; 16],
            device_secrets: Zeroizing::new(vec![4; 40]),
            instance: None,
        };
        let bytes = account.encode(&Instance([5; 8]));
        let back = Account::decode(&bytes).unwrap();
        assert_eq!(back.instance, Some(Instance([5; 8])));
        assert_eq!(back.relay, account.relay);
        for cut in 0..bytes.len() {
            assert!(Account::decode(&bytes[..cut]).is_err(), "{cut}");
        }
        // Format 1: the same fields without the instance.
        let mut old = bytes[..bytes.len() - 8].to_vec();
        old[0] = 1;
        let back = Account::decode(&old).unwrap();
        assert_eq!(back.instance, None);
        assert_eq!(*back.device_secrets, vec![4; 40]);
        let mut unknown = bytes.to_vec();
        unknown[0] = 3;
        assert!(Account::decode(&unknown).is_err());
    }

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let c = ConvRecord {
            team: TeamId([7; 16]),
            visitor: true,
            cursor: 42,
            needs_epoch: true,
        };
        assert_eq!(ConvRecord::decode(&c.encode()).unwrap(), c);
        let m = StoredMessage {
            sender: DeviceId([1; 32]),
            kind: MessageKind::Text,
            epoch: 3,
            counter: 9,
            at: 100,
            content: Zeroizing::new(b"hello".to_vec()),
        };
        let bytes = m.encode().unwrap();
        let back = StoredMessage::decode(&bytes).unwrap();
        assert_eq!(back.content.as_slice(), b"hello");
        assert_eq!((back.epoch, back.counter, back.at), (3, 9, 100));
        // Short and long contents share a padded size bucket.
        let longer = StoredMessage {
            content: Zeroizing::new(vec![b'x'; 40]),
            ..m.clone()
        };
        assert_eq!(longer.encode().unwrap().len(), bytes.len());
        for cut in 0..bytes.len() {
            assert!(StoredMessage::decode(&bytes[..cut]).is_err());
        }
        assert!(ConvRecord::decode(&[9, 9, 9]).is_err());
    }

    #[test]
    fn team_records_keep_a_witness_pin_and_still_read_without_one() {
        let plain = TeamRecord {
            fingerprint: LinkHash([3; 32]),
            witness_pin: None,
            verified: None,
        };
        let pinned = TeamRecord {
            witness_pin: Some([4; 32]),
            ..plain.clone()
        };
        // Records written before pins existed are the plain encoding.
        assert_eq!(plain.encode().len(), 1 + 32);
        assert_eq!(TeamRecord::decode(&plain.encode()).unwrap(), plain);
        let bytes = pinned.encode();
        assert_eq!(TeamRecord::decode(&bytes).unwrap(), pinned);
        for cut in 0..bytes.len() {
            if cut != 1 + 32 {
                assert!(TeamRecord::decode(&bytes[..cut]).is_err(), "{cut}");
            }
        }
        let mut unknown = bytes;
        unknown[1 + 32] = 3;
        assert!(TeamRecord::decode(&unknown).is_err());

        // With the verified state too; each optional part at most once, in tag order.
        let full = TeamRecord {
            verified: Some((vec![7; 5], Zeroizing::new(vec![8; 3]))),
            ..pinned.clone()
        };
        let bytes = full.encode();
        assert_eq!(TeamRecord::decode(&bytes).unwrap(), full);
        let verified_only = TeamRecord {
            witness_pin: None,
            ..full.clone()
        };
        assert_eq!(
            TeamRecord::decode(&verified_only.encode()).unwrap(),
            verified_only
        );
        let mut twice = bytes.to_vec();
        twice.extend_from_slice(&bytes[1 + 32..1 + 32 + 33]);
        assert!(TeamRecord::decode(&twice).is_err());
        assert!(!format!("{full:?}").contains("8, 8"));
    }
}
