//! Seals `n` 100-byte texts with sotto or with vodozemac's Megolm, for counting instructions
//! under `valgrind --tool=callgrind` (`scripts/count-seal-instructions.sh`): counts do not move
//! with the load of a shared machine, where criterion's times do.
//!
//! `cargo run --release --example seal_instructions -- <sotto|megolm> <n>`

use std::hint::black_box;

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sotto_core::conversation::{
    ChainId, ConversationId, Instance, MessageContext, MessageKind, SenderChain, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{Device, DeviceKind};
use vodozemac::megolm::{GroupSession, SessionConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(which), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: seal_instructions <sotto|megolm> <n>");
        std::process::exit(2);
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut text = [0u8; 100];
    rng.fill_bytes(&mut text);
    match which.as_str() {
        "sotto" => {
            let device = Device::generate(DeviceKind::Member, &mut rng, 0);
            let id = ChainId {
                conversation: ConversationId([7; 16]),
                epoch: 0,
                sender: device.id(),
                instance: Instance([1; 8]),
                stream: MessageKind::Text.stream(),
            };
            let context = MessageContext {
                conversation: id.conversation,
                epoch: 0,
                team: sotto_core::team::TeamId([8; 16]),
                record_hash: [9; 32],
            };
            let mut chain = SenderChain::new(&SecretBytes::new([9; 32]), id);
            for _ in 0..n {
                let sealed = seal_message(
                    &mut chain,
                    &device,
                    MessageKind::Text,
                    black_box(&text),
                    &context,
                );
                black_box(sealed.map(|m| m.len()).unwrap_or(0));
            }
        }
        "megolm" => {
            let mut session = GroupSession::new(SessionConfig::version_1());
            for _ in 0..n {
                black_box(session.encrypt(black_box(&text)));
            }
        }
        _ => {
            eprintln!("usage: seal_instructions <sotto|megolm> <n>");
            std::process::exit(2);
        }
    }
}
