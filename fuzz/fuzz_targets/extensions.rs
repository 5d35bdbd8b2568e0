//! permessage-deflate negotiation (`wsroute::proto::negotiate_deflate`) on
//! arbitrary `Sec-WebSocket-Extensions` values.
//!
//! Input layout:
//! - byte 0: bit 0 `server_context_takeover`, bit 1
//!   `client_context_takeover`;
//! - byte 1: high 4 bits `server_max_window_bits`, low 4 bits
//!   `client_max_window_bits` (0..=15: values below 8 test the clamping);
//! - the rest: 1–3 header values, separated by `\n` (which no header value
//!   can hold); a fourth `\n` and after stay in the third value.
//!
//! Checked, for every answer:
//! - it is one well-formed `permessage-deflate` element, each parameter
//!   once and in the documented order, that states exactly the returned
//!   `DeflateParams` (absent windows are 15);
//! - the params lie within the config (windows 8–15, the server's at most
//!   its clamped limit; no context kept where the config forbids it);
//! - offered again, the answer is accepted unchanged.
//!
//! When no header holds `"` or `\`, the list grammar is simple enough for
//! a second, independent reading (`reference`): it must find an acceptable
//! offer exactly when `negotiate_deflate` does, and the answer must not
//! exceed what that offer allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsroute::proto::{DeflateConfig, DeflateParams, negotiate_deflate};

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, windows], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let config = DeflateConfig {
        server_context_takeover: flags & 1 != 0,
        client_context_takeover: flags & 2 != 0,
        server_max_window_bits: windows >> 4,
        client_max_window_bits: windows & 0x0f,
        ..DeflateConfig::default()
    };
    let headers: Vec<&[u8]> = rest.splitn(3, |&b| b == b'\n').collect();
    let result = negotiate_deflate(headers.iter().copied(), &config);

    if let Some((params, answer)) = &result {
        check_answer(params, answer, &config);
        let again = negotiate_deflate([answer.as_bytes()], &config);
        assert_eq!(
            again.as_ref(),
            Some(&(*params, answer.clone())),
            "answer re-offered"
        );
    }

    let simple = headers
        .iter()
        .all(|h| !h.contains(&b'"') && !h.contains(&b'\\'));
    if simple {
        let offer = reference(&headers);
        assert_eq!(
            offer.is_some(),
            result.is_some(),
            "reference disagrees: {offer:?}"
        );
        if let (Some(offer), Some((params, answer))) = (offer, &result) {
            check_within_offer(&offer, params, answer);
        }
    }
});

/// The answer's grammar, read independently of the crate's parser: the
/// name, then `"; "`-separated parameters in the fixed order.
fn check_answer(params: &DeflateParams, answer: &str, config: &DeflateConfig) {
    let mut parts = answer.split("; ");
    assert_eq!(parts.next(), Some("permessage-deflate"), "{answer}");
    let mut stated = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut last_rank = 0;
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (part, None),
        };
        let bits = value.map(|v| {
            let bits: u8 = v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {answer}"));
            assert!(
                (8..=15).contains(&bits) && v == bits.to_string(),
                "{answer}"
            );
            bits
        });
        let rank = match (name, bits) {
            ("server_no_context_takeover", None) => {
                stated.server_no_context_takeover = true;
                1
            }
            ("client_no_context_takeover", None) => {
                stated.client_no_context_takeover = true;
                2
            }
            ("server_max_window_bits", Some(bits)) => {
                stated.server_max_window_bits = bits;
                3
            }
            ("client_max_window_bits", Some(bits)) => {
                stated.client_max_window_bits = bits;
                4
            }
            _ => panic!("unexpected parameter {part:?} in {answer}"),
        };
        assert!(rank > last_rank, "order or duplicate in {answer}");
        last_rank = rank;
    }
    assert_eq!(&stated, params, "{answer}");

    let server_limit = config.server_max_window_bits.clamp(8, 15);
    assert!((8..=server_limit).contains(&params.server_max_window_bits));
    let client_limit = config.client_max_window_bits.clamp(8, 15);
    assert!((8..=15).contains(&params.client_max_window_bits));
    // The client's window is either unlimited (15) or limited at least as
    // far as the config asks.
    assert!(params.client_max_window_bits == 15 || params.client_max_window_bits <= client_limit);
    assert!(params.server_no_context_takeover || config.server_context_takeover);
    assert!(params.client_no_context_takeover || config.client_context_takeover);
}

/// A permessage-deflate offer as the reference read it.
#[derive(Debug)]
struct Offer {
    server_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// The first acceptable offer, for lists without quoted strings: split on
/// `,`, then `;`, then the first `=`, trimming spaces and tabs.
fn reference(headers: &[&[u8]]) -> Option<Offer> {
    headers
        .iter()
        .flat_map(|h| h.split(|&b| b == b','))
        .filter(|element| !trim(element).is_empty())
        .find_map(|element| {
            let mut pieces = element.split(|&b| b == b';');
            if trim(pieces.next()?) != b"permessage-deflate" {
                return None;
            }
            let mut offer = Offer {
                server_no_context_takeover: false,
                server_max_window_bits: None,
                client_max_window_bits: None,
            };
            let mut seen: Vec<&[u8]> = Vec::new();
            for piece in pieces {
                let (name, value) = match piece.iter().position(|&b| b == b'=') {
                    Some(i) => (trim(&piece[..i]), Some(trim(&piece[i + 1..]))),
                    None => (trim(piece), None),
                };
                if !is_token(name) || value.is_some_and(|v| !is_token(v)) || seen.contains(&name) {
                    return None;
                }
                seen.push(name);
                let bits = |v: &[u8]| -> Option<u8> {
                    let s = std::str::from_utf8(v).ok()?;
                    let n: u8 = s.parse().ok()?;
                    ((8..=15).contains(&n) && s == n.to_string()).then_some(n)
                };
                match (name, value) {
                    (b"server_no_context_takeover", None) => {
                        offer.server_no_context_takeover = true;
                    }
                    (b"client_no_context_takeover", None) => {}
                    (b"server_max_window_bits", Some(v)) => {
                        offer.server_max_window_bits = Some(bits(v)?);
                    }
                    (b"client_max_window_bits", None) => offer.client_max_window_bits = Some(None),
                    (b"client_max_window_bits", Some(v)) => {
                        offer.client_max_window_bits = Some(Some(bits(v)?));
                    }
                    _ => return None,
                }
            }
            Some(offer)
        })
}

/// The answer never grants the server more, nor asks of the client
/// something, beyond what the chosen offer allowed (RFC 7692 §7.1).
fn check_within_offer(offer: &Offer, params: &DeflateParams, answer: &str) {
    if offer.server_no_context_takeover {
        assert!(params.server_no_context_takeover, "{offer:?} -> {answer}");
    }
    if let Some(n) = offer.server_max_window_bits {
        assert!(params.server_max_window_bits <= n, "{offer:?} -> {answer}");
        assert!(
            answer.contains("server_max_window_bits="),
            "{offer:?} -> {answer}"
        );
    }
    match offer.client_max_window_bits {
        None => {
            assert!(
                !answer.contains("client_max_window_bits"),
                "{offer:?} -> {answer}"
            );
            assert_eq!(params.client_max_window_bits, 15);
        }
        Some(Some(n)) => assert!(params.client_max_window_bits <= n, "{offer:?} -> {answer}"),
        Some(None) => {}
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
