//! Witness statements (PROTOCOL §6.8): the team's freshness witness, a small service the company
//! runs outside the relay, verifies the chain that members push to it and signs "the head of
//! this team was (seq, H) at time t" with the key an owner named in the chain
//! ([`Change::SetWitness`](super::link::Change::SetWitness)).
//!
//! A head attestation ([`attestation`](super::attestation)) only proves that *some* member saw a
//! head; a relay that withholds a removal from that member too gets the old head attested. A
//! witness statement comes from outside the relay: a client that holds one no older than the
//! freshness limit knows every link up to its `seq`, and refuses to send when the relay serves
//! less ([`ChainError::Withheld`]).

use super::attestation::MAX_CLOCK_SKEW_SECS;
use super::ids::{LinkHash, TeamId};
use super::state::TeamState;
use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::sign::{Signature, SignatureContext, SigningKey};
use crate::error::ChainError;
use crate::wire::{self, ObjectType, WireObject};

/// A freshness witness's signed statement of the chain head it verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessStatement {
    /// The team.
    pub team: TeamId,
    /// The sequence number of the newest link the witness verified.
    pub seq: u64,
    /// That link's hash.
    pub head: LinkHash,
    /// The witness's clock when it signed, in seconds since the Unix epoch.
    pub time: u64,
    /// The witness key's signature over everything above, envelope header included.
    pub signature: Signature,
}

/// What a valid, fresh statement says about the chain a client verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessVerdict {
    /// The witness vouches for exactly our head.
    Current,
    /// The witness knows an earlier link of our chain: nothing is hidden from us, but the
    /// witness lags (push it the links after `seq`).
    Behind {
        /// The witness's head sequence number.
        seq: u64,
    },
}

impl WitnessStatement {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::WitnessStatement);
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.put(&self.team);
        w.u64(self.seq);
        w.put(&self.head);
        w.u64(self.time);
    }

    /// The witness's statement of `state`'s head at `now`, signed with its `key`.
    pub fn sign(state: &TeamState, key: &SigningKey, now: u64) -> Self {
        Self::sign_head(key, state.team(), state.seq(), state.head(), now)
    }

    /// A statement of an arbitrary head (tests and tools; the service uses [`Self::sign`]).
    pub fn sign_head(key: &SigningKey, team: TeamId, seq: u64, head: LinkHash, now: u64) -> Self {
        let mut s = WitnessStatement {
            team,
            seq,
            head,
            time: now,
            signature: Signature::from_bytes([0; 64]),
        };
        s.signature = key.sign(SignatureContext::WitnessStatement, &s.signed_bytes());
        s
    }

    /// Checks the statement against the chain this client verified, at `now`:
    ///
    /// - it is for this team and signed by the witness key the chain names, else
    ///   [`ChainError::BadWitness`];
    /// - its time is at most [`MAX_CLOCK_SKEW_SECS`] ahead of `now` (else `BadWitness`) and no
    ///   older than the policy's freshness limit (else [`ChainError::StaleHead`]): only a fresh
    ///   statement bounds what the relay can hide;
    /// - a head beyond ours means the relay withholds links: [`ChainError::Withheld`];
    /// - a head at or before ours must be our link at that position, else [`ChainError::Fork`].
    pub fn check(&self, state: &TeamState, now: u64) -> Result<WitnessVerdict> {
        let (_, key) = state.witness().ok_or(ChainError::BadWitness)?;
        if self.team != state.team() {
            return Err(ChainError::BadWitness.into());
        }
        key.verify(
            SignatureContext::WitnessStatement,
            &self.signed_bytes(),
            &self.signature,
        )
        .map_err(|_| ChainError::BadWitness)?;
        if self.time > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(ChainError::BadWitness.into());
        }
        let limit = u64::from(state.policy().freshness_limit_secs);
        if now.saturating_sub(self.time) > limit {
            return Err(ChainError::StaleHead.into());
        }
        if self.seq > state.seq() {
            return Err(ChainError::Withheld.into());
        }
        if state.link_hash(self.seq) != Some(self.head) {
            return Err(ChainError::Fork.into());
        }
        Ok(if self.seq == state.seq() {
            WitnessVerdict::Current
        } else {
            WitnessVerdict::Behind { seq: self.seq }
        })
    }
}

impl Encode for WitnessStatement {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.array(self.signature.as_bytes());
    }
}

impl Decode for WitnessStatement {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(WitnessStatement {
            team: r.get()?,
            seq: r.u64()?,
            head: r.get()?,
            time: r.u64()?,
            signature: Signature::from_bytes(r.array()?),
        })
    }
}

impl WireObject for WitnessStatement {
    const OBJECT_TYPE: ObjectType = ObjectType::WitnessStatement;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::device::{Device, DeviceKind};
    use crate::team::link::Change;
    use crate::team::{MemberId, Policy, Role, TeamKeyring};

    const NOW: u64 = 1_800_000_000;

    struct Team {
        owner: Device,
        state: TeamState,
        keyring: TeamKeyring,
        witness: SigningKey,
        rng: chacha20::ChaCha20Rng,
    }

    impl Team {
        /// A team whose owner named a witness in link 1.
        fn new() -> Self {
            let mut rng = crate::test_rng(7);
            let owner = Device::generate(DeviceKind::Member, &mut rng, NOW);
            let (_, state, keyring) =
                TeamState::create(&mut rng, &owner, &[], Policy::default(), NOW).unwrap();
            let witness = SigningKey::generate(&mut rng);
            let mut team = Team {
                owner,
                state,
                keyring,
                witness,
                rng,
            };
            let key = team.witness.verifying_key();
            team.append(Change::SetWitness {
                url: "https://witness.example.com".into(),
                key,
            });
            team
        }

        fn append(&mut self, change: Change) {
            let link = self
                .state
                .propose(
                    &mut self.rng,
                    &self.owner,
                    &mut self.keyring,
                    change,
                    false,
                    NOW,
                )
                .unwrap();
            self.state.apply(&link).unwrap();
        }

        fn add_agent(&mut self) {
            let agent = Device::generate(DeviceKind::Member, &mut self.rng, NOW);
            let member = MemberId::random(&mut self.rng);
            self.append(Change::AddMember {
                member,
                role: Role::Agent,
                devices: vec![agent.record()],
            });
        }
    }

    fn chain_error(e: Error) -> ChainError {
        match e {
            Error::Chain(c) => c,
            other => panic!("not a chain error: {other:?}"),
        }
    }

    #[test]
    fn a_fresh_statement_of_our_head_is_current_and_round_trips() {
        let t = Team::new();
        let s = WitnessStatement::sign(&t.state, &t.witness, NOW);
        let s = WitnessStatement::from_wire(&s.to_wire()).unwrap();
        assert_eq!(s.check(&t.state, NOW + 10), Ok(WitnessVerdict::Current));
    }

    #[test]
    fn a_statement_signed_by_another_key_is_refused() {
        let mut t = Team::new();
        let forger = SigningKey::generate(&mut t.rng);
        let s = WitnessStatement::sign(&t.state, &forger, NOW);
        assert_eq!(
            chain_error(s.check(&t.state, NOW).unwrap_err()),
            ChainError::BadWitness
        );
        // A relay that can forge statements could claim any head: the key in the chain decides.
        let mut tampered = WitnessStatement::sign(&t.state, &t.witness, NOW);
        tampered.time += 1;
        assert_eq!(
            chain_error(tampered.check(&t.state, NOW).unwrap_err()),
            ChainError::BadWitness
        );
    }

    #[test]
    fn a_stale_statement_is_refused() {
        let t = Team::new();
        let limit = u64::from(t.state.policy().freshness_limit_secs);
        let s = WitnessStatement::sign(&t.state, &t.witness, NOW);
        assert!(s.check(&t.state, NOW + limit).is_ok());
        assert_eq!(
            chain_error(s.check(&t.state, NOW + limit + 1).unwrap_err()),
            ChainError::StaleHead
        );
    }

    #[test]
    fn a_statement_from_the_future_is_refused() {
        let t = Team::new();
        let s = WitnessStatement::sign(&t.state, &t.witness, NOW + MAX_CLOCK_SKEW_SECS);
        assert!(s.check(&t.state, NOW).is_ok());
        let s = WitnessStatement::sign(&t.state, &t.witness, NOW + MAX_CLOCK_SKEW_SECS + 1);
        assert_eq!(
            chain_error(s.check(&t.state, NOW).unwrap_err()),
            ChainError::BadWitness
        );
    }

    #[test]
    fn a_head_beyond_ours_means_the_relay_withholds_links() {
        let mut t = Team::new();
        let shown = t.state.clone();
        t.add_agent();
        let s = WitnessStatement::sign(&t.state, &t.witness, NOW);
        assert_eq!(
            chain_error(s.check(&shown, NOW).unwrap_err()),
            ChainError::Withheld
        );
        assert_eq!(s.check(&t.state, NOW), Ok(WitnessVerdict::Current));
    }

    #[test]
    fn another_link_at_a_known_position_is_a_fork() {
        let t = Team::new();
        let s = WitnessStatement::sign_head(
            &t.witness,
            t.state.team(),
            t.state.seq(),
            LinkHash([9; 32]),
            NOW,
        );
        assert_eq!(
            chain_error(s.check(&t.state, NOW).unwrap_err()),
            ChainError::Fork
        );
    }

    #[test]
    fn a_witness_behind_us_is_reported_with_its_head() {
        let mut t = Team::new();
        let lagging = WitnessStatement::sign(&t.state, &t.witness, NOW);
        t.add_agent();
        assert_eq!(
            lagging.check(&t.state, NOW),
            Ok(WitnessVerdict::Behind { seq: 1 })
        );
    }

    #[test]
    fn set_witness_round_trips_and_its_url_is_bounded() {
        use crate::team::link::{Link, MAX_WITNESS_URL_LEN};
        let mut t = Team::new();
        let key = t.witness.verifying_key();
        let change = |url: String| Change::SetWitness { url, key };
        let link = t
            .state
            .propose(
                &mut t.rng,
                &t.owner,
                &mut t.keyring,
                change("https://w.example.com".into()),
                false,
                NOW,
            )
            .unwrap();
        assert_eq!(Link::from_wire(&link.to_wire()).unwrap(), link);

        // A URL one byte over the limit does not decode, whoever signed it.
        let mut long = link.clone();
        long.change = change("a".repeat(MAX_WITNESS_URL_LEN + 1));
        long.sign(&t.owner);
        assert_eq!(
            Link::from_wire(&long.to_wire()),
            Err(Error::Decode(crate::DecodeError::LengthLimit))
        );
        // An empty one decodes but the chain refuses it.
        let empty = t.state.propose(
            &mut t.rng,
            &t.owner,
            &mut t.keyring,
            change(String::new()),
            false,
            NOW,
        );
        assert_eq!(chain_error(empty.unwrap_err()), ChainError::NotPermitted);
    }

    #[test]
    fn another_team_or_no_witness_is_refused() {
        let mut t = Team::new();
        let mut other = WitnessStatement::sign(&t.state, &t.witness, NOW);
        other.team = TeamId([1; 16]);
        let other = WitnessStatement::sign_head(&t.witness, other.team, 1, other.head, NOW);
        assert_eq!(
            chain_error(other.check(&t.state, NOW).unwrap_err()),
            ChainError::BadWitness
        );
        let (_, bare, _) =
            TeamState::create(&mut t.rng, &t.owner, &[], Policy::default(), NOW).unwrap();
        let s = WitnessStatement::sign(&bare, &t.witness, NOW);
        assert_eq!(
            chain_error(s.check(&bare, NOW).unwrap_err()),
            ChainError::BadWitness
        );
    }
}
