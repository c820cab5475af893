//! Identifiers of teams, members and chain links.

use core::fmt;

use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                for b in &self.0[..8] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "..)")
            }
        }

        impl Encode for $name {
            fn encode(&self, w: &mut Writer) {
                w.array(&self.0);
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                Ok($name(r.array()?))
            }
        }
    };
}

byte_id!(
    /// A team's identifier, chosen at random by its creator.
    TeamId,
    16
);
byte_id!(
    /// A member's identifier within a team, chosen at random by the admin who adds them.
    MemberId,
    16
);
byte_id!(
    /// The hash of a chain link; the hash of the first link is the team's fingerprint.
    LinkHash,
    32
);

impl TeamId {
    /// A fresh random team id.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        TeamId(b)
    }
}

impl MemberId {
    /// A fresh random member id.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        MemberId(b)
    }
}
