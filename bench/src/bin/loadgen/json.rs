//! Realistic JSON messages for the compressed cells: a chat/feed payload,
//! an array of message objects with ids, user objects, timestamps, tags
//! and reactions, the same keys again in every object — what
//! permessage-deflate is for. Made from a fixed seed by a small PRNG, so
//! every server of a run, and every run, gets the same bytes.
//!
//! [`message`] returns exactly `size` bytes of valid JSON (ASCII only).

/// The seed of every message: changing it changes every figure of the
/// compressed cells.
const SEED: u64 = 0x5EED_2026_7692_0001;

/// splitmix64: small, fast, and the same on every platform.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "alice", "bruno", "chiara", "dmitri", "emeka", "fatima", "goran", "hana", "ines", "jonas",
    "keiko", "lucas", "maya", "nils", "olga", "pablo", "quinn", "rosa", "sven", "tariq",
];
const LAST: &[&str] = &[
    "kowalski",
    "ferreira",
    "rossi",
    "ivanov",
    "okafor",
    "haddad",
    "petrovic",
    "sato",
    "garcia",
    "berg",
    "tanaka",
    "moreau",
    "lindqvist",
    "novak",
    "silva",
    "weber",
];
const CHANNELS: &[&str] = &[
    "general",
    "random",
    "deploys",
    "support",
    "design",
    "backend",
    "frontend",
    "incidents",
];
const KINDS: &[&str] = &["message", "message", "message", "reply", "edit", "system"];
const TAGS: &[&str] = &[
    "urgent", "release", "question", "bug", "idea", "followup", "docs", "perf", "ops", "ui",
];
const EMOJI: &[&str] = &[
    "thumbsup", "heart", "eyes", "tada", "rocket", "laughing", "ok_hand",
];
const WORDS: &[&str] = &[
    "the",
    "deploy",
    "is",
    "done",
    "and",
    "latency",
    "looks",
    "fine",
    "on",
    "our",
    "side",
    "can",
    "you",
    "check",
    "dashboard",
    "again",
    "after",
    "lunch",
    "we",
    "rolled",
    "back",
    "build",
    "because",
    "tests",
    "failed",
    "server",
    "memory",
    "went",
    "up",
    "a",
    "bit",
    "yesterday",
    "please",
    "review",
    "my",
    "pull",
    "request",
    "when",
    "have",
    "time",
    "thanks",
    "for",
    "help",
    "meeting",
    "moved",
    "to",
    "tomorrow",
    "morning",
    "queue",
    "drained",
    "alerts",
    "cleared",
];

/// A message object, split where the last one is cut to fit: `head`
/// ends inside the `text` string, so `head + text + "\"}"` is the object.
fn record(rng: &mut SplitMix64, index: u64) -> (String, String) {
    let user = 10_000 + rng.below(90_000);
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    // Milliseconds after 2026-11-24 00:00:00 UTC, increasing.
    let ms = index * 1_250 + rng.below(1_000);
    let (h, m, s, milli) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000,
    );
    let mut head = format!(
        "{{\"id\":{},\"type\":\"{}\",\"channel\":\"{}\",\"ts\":\"2026-11-24T{h:02}:{m:02}:{s:02}.{milli:03}Z\",\
         \"user\":{{\"id\":{user},\"name\":\"{first}.{last}\",\
         \"avatar\":\"https://cdn.example.com/a/{user}.png\",\"verified\":{}}},",
        1_000_000 + index,
        rng.pick(KINDS),
        rng.pick(CHANNELS),
        rng.below(3) == 0,
    );
    let tags: Vec<String> = (0..rng.below(3))
        .map(|_| format!("\"{}\"", rng.pick(TAGS)))
        .collect();
    head.push_str(&format!("\"tags\":[{}],", tags.join(",")));
    let reactions: Vec<String> = (0..rng.below(3))
        .map(|_| {
            format!(
                "{{\"emoji\":\"{}\",\"count\":{}}}",
                rng.pick(EMOJI),
                1 + rng.below(12)
            )
        })
        .collect();
    head.push_str(&format!(
        "\"reactions\":[{}],\"thread\":{},\"read\":{},\"text\":\"",
        reactions.join(","),
        if rng.below(4) == 0 {
            format!("{}", 1_000_000 + rng.below(index + 1))
        } else {
            "null".to_owned()
        },
        rng.below(2) == 0,
    ));
    let words = 6 + rng.below(20);
    let text: Vec<&str> = (0..words).map(|_| rng.pick(WORDS)).collect();
    (head, text.join(" "))
}

/// Exactly `size` bytes of JSON: an array of message objects, the last
/// one's `text` cut to fit; spaces before the `]` where even a cut object
/// does not fit (only when `size` is below one object, about 300 bytes).
pub(crate) fn message(size: usize) -> Vec<u8> {
    let mut rng = SplitMix64(SEED);
    let mut out = String::with_capacity(size + 512);
    out.push('[');
    for index in 0.. {
        let (head, text) = record(&mut rng, index);
        let comma = usize::from(index > 0);
        let whole = head.len() + text.len() + 2;
        // Room left before the closing `]`.
        let room = size.saturating_sub(out.len() + 1 + comma);
        if whole <= room {
            if comma == 1 {
                out.push(',');
            }
            out.push_str(&head);
            out.push_str(&text);
            out.push_str("\"}");
            continue;
        }
        if head.len() + 2 <= room {
            if comma == 1 {
                out.push(',');
            }
            out.push_str(&head);
            // A trailing space in a cut text would read oddly; any ASCII
            // is valid JSON inside the string.
            out.push_str(&text[..room - head.len() - 2]);
            out.push_str("\"}");
        }
        break;
    }
    while out.len() + 1 < size {
        out.push(' ');
    }
    out.push(']');
    let mut bytes = out.into_bytes();
    // Below 2 bytes there is no JSON array at all: `size` bytes of it.
    bytes.truncate(size);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_valid_json_of_the_exact_size() {
        for size in [2, 64, 256, 300, 1024, 4000, 16 * 1024, 64 * 1024] {
            let m = message(size);
            assert_eq!(m.len(), size);
            let value: serde_json::Value = serde_json::from_slice(&m)
                .unwrap_or_else(|e| panic!("size {size}: {e}: {}", String::from_utf8_lossy(&m)));
            assert!(value.is_array());
            assert!(m.is_ascii());
        }
    }

    #[test]
    fn the_sizes_of_the_cells_hold_whole_objects() {
        // 256 B holds a (cut) object, not padding; 16 KiB holds dozens.
        let objects = |size| {
            let v: serde_json::Value = serde_json::from_slice(&message(size)).unwrap();
            v.as_array().unwrap().len()
        };
        assert_eq!(objects(256), 1);
        assert!(objects(1024) >= 2);
        assert!(objects(16 * 1024) >= 40);
        let small = message(256);
        assert!(
            !small.ends_with(b" ]"),
            "{}",
            String::from_utf8_lossy(&small)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(message(16 * 1024), message(16 * 1024));
        // A longer message starts with the objects of a shorter one.
        let short = message(1024);
        let long = message(16 * 1024);
        let cut = short.iter().rposition(|&b| b == b'}').unwrap();
        let first_object_end = short.iter().position(|&b| b == b'}').unwrap();
        assert_eq!(short[..first_object_end], long[..first_object_end]);
        assert!(cut > first_object_end);
    }

    #[test]
    fn objects_repeat_their_keys() {
        let m = String::from_utf8(message(16 * 1024)).unwrap();
        assert!(m.matches("\"avatar\":").count() >= 40);
        assert!(m.contains("\"ts\":\"2026-11-24T00:00:0"));
    }
}
