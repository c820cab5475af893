#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::codec::Reader;

/// Limits (and, reversed, minimum element lengths) the ops draw from, extremes included.
const LIMITS: [usize; 8] = [0, 1, 2, 32, 255, 1024, 65_535, usize::MAX];

fuzz_target!(|data: &[u8]| {
    // Byte 0 says how many op bytes follow; what is left after them is the input being read.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (ops, input) = rest.split_at(usize::from(n).min(rest.len()));
    let mut r = Reader::new(input);
    for &op in ops {
        let before = r.remaining();
        let limit = LIMITS[usize::from(op >> 5)];
        // Bytes a successful op must have consumed.
        let consumed = match op % 12 {
            0 => r.u8().ok().map(|_| 1),
            1 => r.u16().ok().map(|_| 2),
            2 => r.u32().ok().map(|_| 4),
            3 => r.u64().ok().map(|_| 8),
            4 => r.array::<32>().ok().map(|_| 32),
            5 => r.array::<0>().ok().map(|_| 0),
            6 => r.bytes_u16(limit).ok().map(|b| {
                assert!(b.len() <= limit);
                2 + b.len()
            }),
            7 => r.bytes_u32(limit).ok().map(|b| {
                assert!(b.len() <= limit);
                4 + b.len()
            }),
            8 => {
                let min_len = LIMITS[7 - usize::from(op >> 5)];
                r.count_u16(limit, min_len).ok().map(|count| {
                    assert!(count <= limit);
                    assert!(count.saturating_mul(min_len) <= r.remaining());
                    2
                })
            }
            9 => r.string_u16(limit).ok().map(|s| {
                assert!(s.len() <= limit);
                2 + s.len()
            }),
            10 => r.take(limit).ok().map(|b| b.len()),
            _ => {
                assert_eq!(r.finish().is_ok(), before == 0);
                Some(0)
            }
        };
        match consumed {
            Some(n) => assert_eq!(before - r.remaining(), n),
            None => assert!(r.remaining() <= before),
        }
    }
});
