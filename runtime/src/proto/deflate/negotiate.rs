//! Reading the client's `Sec-WebSocket-Extensions` offers and choosing
//! the permessage-deflate parameters (RFC 7692 §5, §7.1).
//!
//! Entry point: [`negotiate`]. It is pure: header bytes and the server's
//! [`DeflateConfig`] in, the parameters in force and the answer out.
//!
//! The steps, each a small function below:
//! 1. [`Elements`] splits every header value into list elements at the
//!    commas that lie outside quoted strings (RFC 7230 §7);
//! 2. [`parse_extension`] reads one element as
//!    `name *( OWS ";" OWS param )` (RFC 6455 §9.1);
//! 3. [`Offer::read`] keeps a `permessage-deflate` element whose
//!    parameters RFC 7692 §7 lets a server accept;
//! 4. [`Offer::accept`] applies the config and writes the answer
//!    (RFC 7692 §7.1.1.1–§7.1.2.2).

use std::borrow::Cow;

use super::{DeflateConfig, DeflateParams};

/// The registered extension name (RFC 7692 §7). Compared byte for byte:
/// RFC 6455 says "ASCII case-insensitive" where it means it (the `Upgrade`
/// and `Connection` values, §4.1, §4.2.1) and does not for
/// `extension-token` (§9.1), so `Permessage-Deflate` is another,
/// unregistered extension and is declined — declining is always safe, the
/// connection then runs without compression.
const NAME: &[u8] = b"permessage-deflate";

/// The window a side may use when nothing limits it: RFC 7692 §7.1.2.1
/// and §7.1.2.2 read the absence of a window parameter as "an LZ77
/// sliding window of up to 32,768 bytes", 2^15.
const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window RFC 7692 §7.1.2.1 and §7.1.2.2 allow: "between 8
/// to 15, inclusive".
const MIN_WINDOW_BITS: u8 = 8;

/// The parameters agreed for the first acceptable permessage-deflate
/// offer among `offers` (the values of every `Sec-WebSocket-Extensions`
/// header, in order), and the header value to answer with; `None` if no
/// offer is acceptable or none was made.
///
/// Why each rule holds, with the RFC text it rests on, is in the comments
/// of `Offer::read` and `Offer::accept` in this file. In short:
///
/// - Several extensions in one header and several headers are one list
///   (RFC 6455 §9.1, RFC 7230 §3.2.2); empty elements are ignored
///   (RFC 7230 §7). Each header is split on its own, so an unterminated
///   quoted string swallows only the rest of its own header.
/// - Only elements named exactly `permessage-deflate` are offers; the first
///   acceptable one is taken (RFC 7692 §5: the client lists its offers in
///   order of preference).
/// - An element that does not parse is declined like an unacceptable
///   offer and the next one is considered. RFC 6455 §9.1 would have the
///   server fail the connection on a malformed header; this function only
///   chooses an extension, and answering without one is always a valid
///   outcome of negotiation, so it never turns bad bytes into an error.
/// - The answer names the parameters in a fixed order:
///   `server_no_context_takeover`, `client_no_context_takeover`,
///   `server_max_window_bits=N`, `client_max_window_bits=N` (the order of
///   RFC 7692 §7.1), separated by `"; "`. A flag appears when it is in
///   force; `server_max_window_bits` when offered (accepting it means
///   answering it) or below 15; `client_max_window_bits` when offered and
///   below 15 (never unoffered). Absent windows mean 15, so the answer
///   alone states every field of the returned [`DeflateParams`].
///
/// Config windows outside 8–15 are clamped into that range, so the answer
/// never names a window the RFC does not define.
///
/// # Example
///
/// ```
/// use wsroute::proto::{DeflateConfig, negotiate_deflate};
///
/// // Chromium's and Firefox's offer, with the default config.
/// let offer: &[u8] = b"permessage-deflate; client_max_window_bits";
/// let (params, answer) = negotiate_deflate([offer], &DeflateConfig::default()).unwrap();
/// assert_eq!(answer, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
/// assert!(params.server_no_context_takeover && params.client_no_context_takeover);
/// assert_eq!((params.server_max_window_bits, params.client_max_window_bits), (15, 15));
/// ```
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a [u8]>,
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    offers
        .into_iter()
        .flat_map(Elements::new)
        .filter_map(parse_extension)
        .filter(|extension| extension.name == NAME)
        .find_map(|extension| Offer::read(&extension.params))
        .map(|offer| offer.accept(config))
}

/// The list elements of one header value: the bytes between commas that
/// lie outside quoted strings (RFC 7230 §7, §3.2.6: a `,` inside
/// `"..."`, escaped or not, does not split). Elements keep their
/// surrounding whitespace; [`parse_extension`] skips it.
#[derive(Debug)]
struct Elements<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Elements<'a> {
    fn new(header: &'a [u8]) -> Self {
        Self { rest: Some(header) }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, &b) in rest.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted {
                match b {
                    b'\\' => escaped = true,
                    b'"' => quoted = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => quoted = true,
                    b',' => {
                        self.rest = rest.get(i + 1..);
                        return rest.get(..i);
                    }
                    _ => {}
                }
            }
        }
        // The last element; an unterminated quote makes it malformed,
        // which `parse_extension` finds.
        self.rest = None;
        Some(rest)
    }
}

/// One extension of the list: its name and its parameters in order.
#[derive(Debug, PartialEq, Eq)]
struct Extension<'a> {
    name: &'a [u8],
    params: Vec<Param<'a>>,
}

/// `token [ "=" ( token / quoted-string ) ]` (RFC 6455 §9.1), the value
/// unquoted.
#[derive(Debug, PartialEq, Eq)]
struct Param<'a> {
    name: &'a [u8],
    value: Option<Cow<'a, [u8]>>,
}

/// One list element as an extension (RFC 6455 §9.1):
///
/// ```text
/// extension       = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// with optional whitespace around `;` and `=` (RFC 6455 §9.1 uses the
/// "implied *LWS rule" of RFC 2616; RFC 7230 §3.2.3 calls it OWS, spaces
/// and tabs). `None` for an empty element (RFC 7230 §7: "a recipient MUST
/// parse and ignore a reasonable number of empty list elements") and for
/// one that does not match the grammar.
fn parse_extension(element: &[u8]) -> Option<Extension<'_>> {
    let mut cursor = Cursor { bytes: element };
    cursor.skip_ows();
    let name = cursor.token()?;
    let mut params = Vec::new();
    loop {
        cursor.skip_ows();
        if cursor.bytes.is_empty() {
            return Some(Extension { name, params });
        }
        cursor.expect(b';')?;
        cursor.skip_ows();
        let param_name = cursor.token()?;
        cursor.skip_ows();
        let value = if cursor.expect(b'=').is_some() {
            cursor.skip_ows();
            Some(cursor.value()?)
        } else {
            None
        };
        params.push(Param {
            name: param_name,
            value,
        });
    }
}

/// The unread part of one element.
#[derive(Debug)]
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// OWS = *( SP / HTAB ) (RFC 7230 §3.2.3).
    fn skip_ows(&mut self) {
        let n = self
            .bytes
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        self.bytes = self.bytes.get(n..).unwrap_or_default();
    }

    /// Consumes `byte` if it comes next.
    fn expect(&mut self, byte: u8) -> Option<()> {
        let (&first, rest) = self.bytes.split_first()?;
        (first == byte).then(|| self.bytes = rest)
    }

    /// token = 1*tchar (RFC 7230 §3.2.6).
    fn token(&mut self) -> Option<&'a [u8]> {
        let n = self.bytes.iter().take_while(|&&b| is_tchar(b)).count();
        if n == 0 {
            return None;
        }
        let (token, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(token)
    }

    /// A parameter value: a token, or a quoted-string whose content,
    /// unescaped, is a token (RFC 6455 §9.1: "the value after
    /// quoted-string unescaping MUST conform to the 'token' ABNF").
    fn value(&mut self) -> Option<Cow<'a, [u8]>> {
        if self.expect(b'"').is_none() {
            return self.token().map(Cow::Borrowed);
        }
        let value = self.quoted_rest()?;
        (!value.is_empty() && value.iter().all(|&b| is_tchar(b))).then_some(value)
    }

    /// The rest of a quoted-string after its opening quote, unescaped
    /// (RFC 7230 §3.2.6):
    ///
    /// ```text
    /// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    /// qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    /// quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
    /// ```
    fn quoted_rest(&mut self) -> Option<Cow<'a, [u8]>> {
        let start = self.bytes;
        let mut unescaped: Option<Vec<u8>> = None;
        let mut i = 0;
        loop {
            let b = *start.get(i)?;
            match b {
                b'"' => {
                    let value = match unescaped {
                        Some(owned) => Cow::Owned(owned),
                        None => Cow::Borrowed(start.get(..i)?),
                    };
                    self.bytes = start.get(i + 1..)?;
                    return Some(value);
                }
                b'\\' => {
                    let escaped = *start.get(i + 1)?;
                    if !(escaped == b'\t' || escaped == b' ' || is_vchar_or_obs(escaped)) {
                        return None;
                    }
                    unescaped
                        .get_or_insert_with(|| start.get(..i).unwrap_or_default().to_vec())
                        .push(escaped);
                    i += 2;
                }
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {
                    if let Some(owned) = unescaped.as_mut() {
                        owned.push(b);
                    }
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// tchar (RFC 7230 §3.2.6): `!#$%&'*+-.^_`|~`, digits, letters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// VCHAR (%x21-7E) or obs-text (%x80-FF).
fn is_vchar_or_obs(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// A permessage-deflate offer the server can accept: what the client
/// asked for, each parameter at most once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `server_max_window_bits=N`: the server must not use more.
    server_max_window_bits: Option<u8>,
    /// `client_max_window_bits`, bare (`Some(None)`) or with a value.
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// The offer in `params`, or `None` when RFC 7692 §7 requires the
    /// server to decline it: "A server MUST decline an extension
    /// negotiation offer for this extension if any of the following
    /// conditions are met: the negotiation offer contains an extension
    /// parameter not defined for use in an offer; … an extension parameter
    /// with an invalid value; … multiple extension parameters with the same
    /// name; the server doesn't support the offered configuration."
    ///
    /// Parameter names, like the extension name, are compared byte for
    /// byte (RFC 7692 §7.1 defines them in lower case; nothing makes them
    /// case-insensitive).
    fn read(params: &[Param<'_>]) -> Option<Self> {
        let mut offer = Self::default();
        let mut seen_server_bits = false;
        for param in params {
            let value = param.value.as_deref();
            match param.name {
                // §7.1.1.1, §7.1.1.2: "This extension parameter has no
                // value."
                b"server_no_context_takeover" => {
                    if value.is_some() || offer.server_no_context_takeover {
                        return None;
                    }
                    offer.server_no_context_takeover = true;
                }
                b"client_no_context_takeover" => {
                    if value.is_some() || offer.client_no_context_takeover {
                        return None;
                    }
                    offer.client_no_context_takeover = true;
                }
                // §7.1.2.1: "This parameter has a decimal integer value
                // without leading zeroes between 8 to 15, inclusive" —
                // a value is required in an offer.
                b"server_max_window_bits" => {
                    if seen_server_bits {
                        return None;
                    }
                    seen_server_bits = true;
                    offer.server_max_window_bits = Some(window_bits(value?)?);
                }
                // §7.1.2.2: "This parameter has no value or a decimal
                // integer value without leading zeroes between 8 to 15".
                b"client_max_window_bits" => {
                    if offer.client_max_window_bits.is_some() {
                        return None;
                    }
                    offer.client_max_window_bits = Some(match value {
                        None => None,
                        Some(value) => Some(window_bits(value)?),
                    });
                }
                _ => return None,
            }
        }
        Some(offer)
    }

    /// The parameters in force and the answer for this offer under
    /// `config`. Every offer `read` returns is accepted: each parameter
    /// can be met whatever the config says.
    fn accept(self, config: &DeflateConfig) -> (DeflateParams, String) {
        let server_limit = clamp_window_bits(config.server_max_window_bits);
        let client_limit = clamp_window_bits(config.client_max_window_bits);

        // §7.1.1.1: "A server accepts an extension negotiation offer that
        // includes the "server_no_context_takeover" extension parameter by
        // including the "server_no_context_takeover" extension parameter in
        // the corresponding extension negotiation response", and "A server
        // MAY include the "server_no_context_takeover" extension parameter
        // in an extension negotiation response even if the extension
        // negotiation offer being accepted by the extension negotiation
        // response didn't include" it. So: named whenever the server resets.
        let server_no_context_takeover =
            self.server_no_context_takeover || !config.server_context_takeover;

        // §7.1.1.2: "A server MAY include the "client_no_context_takeover"
        // extension parameter in an extension negotiation response", with
        // no condition on the offer. An offered one is a promise ("the
        // client is not going to use context takeover" even if the server
        // does not answer it), so it is in force either way; naming it
        // keeps the answer a full statement of the parameters.
        let client_no_context_takeover =
            self.client_no_context_takeover || !config.client_context_takeover;

        // §7.1.2.1: "A server accepts an extension negotiation offer with
        // this parameter by including the "server_max_window_bits"
        // extension parameter in the extension negotiation response to
        // send back to the client with the same or smaller value as the
        // offer", and "A server MAY include the "server_max_window_bits"
        // extension parameter in an extension negotiation response even if
        // the extension negotiation offer being accepted by the response
        // didn't include" it. An offered 8 is answered 8: 8 is a value the
        // section defines, and a larger one would break the first rule. A
        // sender may still leave any message uncompressed (RFC 7692 §6:
        // the RSV1 bit "indicates whether a message is compressed or
        // not"), which is how the compressor honours a window zlib cannot
        // produce.
        let server_max_window_bits = match self.server_max_window_bits {
            Some(offered) => offered.min(server_limit),
            None => server_limit,
        };
        let name_server_max_window_bits =
            self.server_max_window_bits.is_some() || server_max_window_bits < MAX_WINDOW_BITS;

        // §7.1.2.2: "If a received extension negotiation offer doesn't have
        // the "client_max_window_bits" extension parameter, the
        // corresponding extension negotiation response to the offer MUST
        // NOT include" it; when it has one, the server may include it
        // "with a value equal to or smaller than the received value". An
        // offered value is also a promise ("the client is not going to use
        // an LZ77 sliding window size greater than the size specified by
        // the value in the extension negotiation offer"), so the window in
        // force is the smaller of the value (15 when bare) and the config;
        // it is named when it is below 15, the size a client assumes
        // without it.
        let client_max_window_bits = match self.client_max_window_bits {
            None => MAX_WINDOW_BITS,
            Some(offered) => offered.unwrap_or(MAX_WINDOW_BITS).min(client_limit),
        };
        let name_client_max_window_bits =
            self.client_max_window_bits.is_some() && client_max_window_bits < MAX_WINDOW_BITS;

        let mut answer = String::from("permessage-deflate");
        if server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if name_server_max_window_bits {
            answer.push_str("; server_max_window_bits=");
            answer.push_str(&server_max_window_bits.to_string());
        }
        if name_client_max_window_bits {
            answer.push_str("; client_max_window_bits=");
            answer.push_str(&client_max_window_bits.to_string());
        }
        let params = DeflateParams {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        };
        (params, answer)
    }
}

/// A window size value (RFC 7692 §7.1.2.1, §7.1.2.2): "a decimal integer
/// value without leading zeroes between 8 to 15, inclusive" — so exactly
/// `8`, `9`, `10` … `15`: no sign, no leading zero, no space.
fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
        _ => None,
    }
}

/// A config window brought into the range the RFC defines.
fn clamp_window_bits(bits: u8) -> u8 {
    bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The default config: no context takeover either way, full windows.
    fn default() -> DeflateConfig {
        DeflateConfig::default()
    }

    /// Keeps both contexts, full windows: answers name only what the
    /// offer asked for.
    fn takeover() -> DeflateConfig {
        DeflateConfig {
            server_context_takeover: true,
            client_context_takeover: true,
            ..DeflateConfig::default()
        }
    }

    fn answer(headers: &[&[u8]], config: &DeflateConfig) -> Option<String> {
        negotiate(headers.iter().copied(), config).map(|(_, answer)| answer)
    }

    fn params(headers: &[&[u8]], config: &DeflateConfig) -> Option<DeflateParams> {
        negotiate(headers.iter().copied(), config).map(|(params, _)| params)
    }

    const BARE: &str = "permessage-deflate";

    // ---- nothing offered ----

    #[test]
    fn no_header_no_extension() {
        assert_eq!(answer(&[], &default()), None);
    }

    #[test]
    fn empty_header_no_extension() {
        assert_eq!(answer(&[b""], &default()), None);
        assert_eq!(answer(&[b" , ,\t,"], &default()), None);
    }

    #[test]
    fn other_extensions_only() {
        assert_eq!(
            answer(&[b"x-webkit-deflate-frame, foo; bar=1"], &default()),
            None
        );
    }

    // ---- real clients ----

    #[test]
    fn chromium_and_firefox_offer_with_default_config() {
        let (params, answer) = negotiate(
            [&b"permessage-deflate; client_max_window_bits"[..]],
            &default(),
        )
        .unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(
            params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            }
        );
    }

    #[test]
    fn autobahn_client_no_context_takeover() {
        let offer: &[u8] =
            b"permessage-deflate; client_no_context_takeover; client_max_window_bits";
        assert_eq!(
            answer(&[offer], &takeover()).as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
        assert!(
            params(&[offer], &takeover())
                .unwrap()
                .client_no_context_takeover
        );
    }

    #[test]
    fn autobahn_server_window_8_is_answered_8() {
        let offer: &[u8] = b"permessage-deflate; server_max_window_bits=8; client_max_window_bits";
        assert_eq!(
            answer(&[offer], &takeover()).as_deref(),
            Some("permessage-deflate; server_max_window_bits=8")
        );
        assert_eq!(
            params(&[offer], &takeover())
                .unwrap()
                .server_max_window_bits,
            8
        );
    }

    #[test]
    fn autobahn_server_no_context_takeover_window_15() {
        let offer: &[u8] =
            b"permessage-deflate; server_no_context_takeover; server_max_window_bits=15";
        assert_eq!(
            answer(&[offer], &takeover()).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=15")
        );
    }

    #[test]
    fn autobahn_list_of_offers_takes_the_first() {
        let offer: &[u8] = b"permessage-deflate; server_max_window_bits=9, permessage-deflate";
        assert_eq!(
            answer(&[offer], &takeover()).as_deref(),
            Some("permessage-deflate; server_max_window_bits=9")
        );
    }

    // ---- the list: several offers, several headers ----

    #[test]
    fn bare_offer_bare_answer() {
        assert_eq!(
            answer(&[b"permessage-deflate"], &takeover()).as_deref(),
            Some(BARE)
        );
    }

    #[test]
    fn offer_after_another_extension() {
        assert_eq!(
            answer(&[b"foo; a=1, permessage-deflate"], &takeover()).as_deref(),
            Some(BARE)
        );
    }

    #[test]
    fn offer_in_second_header() {
        assert_eq!(
            answer(
                &[b"foo", b"permessage-deflate; server_max_window_bits=12"],
                &takeover()
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=12")
        );
    }

    #[test]
    fn first_acceptable_offer_across_headers() {
        let headers: [&[u8]; 2] = [
            b"permessage-deflate; server_max_window_bits=10",
            b"permessage-deflate; server_max_window_bits=11",
        ];
        assert_eq!(
            params(&headers, &takeover())
                .unwrap()
                .server_max_window_bits,
            10
        );
    }

    #[test]
    fn declined_offer_in_first_header_then_second_header() {
        let headers: [&[u8]; 2] = [
            b"permessage-deflate; bogus",
            b"permessage-deflate; server_max_window_bits=11",
        ];
        assert_eq!(
            params(&headers, &takeover())
                .unwrap()
                .server_max_window_bits,
            11
        );
    }

    #[test]
    fn empty_elements_are_ignored() {
        assert_eq!(
            answer(&[b",, ,permessage-deflate ,,"], &takeover()).as_deref(),
            Some(BARE)
        );
    }

    // ---- whitespace ----

    #[test]
    fn whitespace_around_separators() {
        let offer: &[u8] = b" \tpermessage-deflate \t; \tserver_max_window_bits \t= \t10 \t";
        assert_eq!(
            params(&[offer], &takeover())
                .unwrap()
                .server_max_window_bits,
            10
        );
    }

    #[test]
    fn no_whitespace_at_all() {
        let offer: &[u8] =
            b"permessage-deflate;server_no_context_takeover;server_max_window_bits=10";
        assert_eq!(
            answer(&[offer], &takeover()).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
        );
    }

    #[test]
    fn whitespace_inside_a_value_is_declined() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; server_max_window_bits=1 0"],
                &takeover()
            ),
            None
        );
    }

    // ---- quoted strings ----

    #[test]
    fn quoted_value_is_unquoted() {
        let offer: &[u8] = br#"permessage-deflate; server_max_window_bits="10""#;
        assert_eq!(
            params(&[offer], &takeover())
                .unwrap()
                .server_max_window_bits,
            10
        );
    }

    #[test]
    fn quoted_client_window() {
        let offer: &[u8] = br#"permessage-deflate; client_max_window_bits="9""#;
        assert_eq!(
            answer(&[offer], &takeover()).as_deref(),
            Some("permessage-deflate; client_max_window_bits=9")
        );
    }

    #[test]
    fn escaped_value_is_unescaped() {
        let offer: &[u8] = br#"permessage-deflate; server_max_window_bits="1\1""#;
        assert_eq!(
            params(&[offer], &takeover())
                .unwrap()
                .server_max_window_bits,
            11
        );
    }

    #[test]
    fn quoted_comma_does_not_split() {
        // Were the comma a separator, `permessage-deflate` after it would
        // be an acceptable second offer.
        let offer: &[u8] = br#"foo; a=",permessage-deflate,", bar"#;
        assert_eq!(answer(&[offer], &takeover()), None);
    }

    #[test]
    fn quoted_escaped_quote_does_not_end_the_string() {
        let offer: &[u8] = br#"foo; a="\", permessage-deflate", bar"#;
        assert_eq!(answer(&[offer], &takeover()), None);
    }

    #[test]
    fn quoted_comma_in_other_extension_then_offer() {
        let offer: &[u8] = br#"foo; a="x,y;z", permessage-deflate"#;
        assert_eq!(answer(&[offer], &takeover()).as_deref(), Some(BARE));
    }

    #[test]
    fn quoted_semicolon_in_value_is_declined() {
        // `"10;x"` is one value, and not a token once unquoted.
        let offer: &[u8] = br#"permessage-deflate; server_max_window_bits="10;x""#;
        assert_eq!(answer(&[offer], &takeover()), None);
    }

    #[test]
    fn quoted_non_token_value_is_declined() {
        let offer: &[u8] = br#"permessage-deflate; server_max_window_bits=" 10""#;
        assert_eq!(answer(&[offer], &takeover()), None);
    }

    #[test]
    fn unterminated_quote_swallows_only_its_header() {
        let headers: [&[u8]; 2] = [
            br#"foo; a="x, permessage-deflate"#,
            b"permessage-deflate; server_max_window_bits=13",
        ];
        assert_eq!(
            params(&headers, &takeover())
                .unwrap()
                .server_max_window_bits,
            13
        );
    }

    #[test]
    fn empty_quoted_value_is_declined() {
        assert_eq!(
            answer(
                &[br#"permessage-deflate; client_max_window_bits="""#],
                &takeover()
            ),
            None
        );
    }

    // ---- malformed elements are skipped, the rest still considered ----

    #[test]
    fn trailing_semicolon_is_declined() {
        assert_eq!(answer(&[b"permessage-deflate;"], &takeover()), None);
    }

    #[test]
    fn malformed_element_then_good_offer() {
        let offer: &[u8] = b"permessage-deflate; =1, permessage-deflate; server_max_window_bits=14";
        assert_eq!(
            params(&[offer], &takeover())
                .unwrap()
                .server_max_window_bits,
            14
        );
    }

    #[test]
    fn missing_value_after_equals_is_declined() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; server_max_window_bits="],
                &takeover()
            ),
            None
        );
    }

    #[test]
    fn non_tchar_in_name_is_declined() {
        assert_eq!(
            answer(
                &[b"permessage-deflate@; server_no_context_takeover"],
                &takeover()
            ),
            None
        );
        assert_eq!(
            answer(
                &[b"permessage-deflate server_no_context_takeover"],
                &takeover()
            ),
            None
        );
    }

    #[test]
    fn non_ascii_is_declined() {
        assert_eq!(
            answer(&["permessage-deflaté".as_bytes()], &takeover()),
            None
        );
    }

    // ---- case ----

    #[test]
    fn extension_name_is_case_sensitive() {
        assert_eq!(answer(&[b"Permessage-Deflate"], &takeover()), None);
        assert_eq!(
            answer(&[b"PERMESSAGE-DEFLATE, permessage-deflate"], &takeover()).as_deref(),
            Some(BARE)
        );
    }

    #[test]
    fn parameter_name_is_case_sensitive() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; Server_No_Context_Takeover"],
                &takeover()
            ),
            None
        );
    }

    // ---- declined offers ----

    #[test]
    fn unknown_parameter_declined_next_taken() {
        let offer: &[u8] =
            b"permessage-deflate; x=1, permessage-deflate; server_max_window_bits=12";
        assert_eq!(
            params(&[offer], &takeover())
                .unwrap()
                .server_max_window_bits,
            12
        );
        assert_eq!(answer(&[b"permessage-deflate; mux"], &takeover()), None);
    }

    #[test]
    fn duplicate_server_no_context_takeover_declined_next_taken() {
        let offer: &[u8] = b"permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate";
        assert_eq!(answer(&[offer], &takeover()).as_deref(), Some(BARE));
    }

    #[test]
    fn duplicate_client_no_context_takeover_declined() {
        let offer: &[u8] =
            b"permessage-deflate; client_no_context_takeover; client_no_context_takeover";
        assert_eq!(answer(&[offer], &takeover()), None);
    }

    #[test]
    fn duplicate_server_max_window_bits_declined() {
        let offer: &[u8] = b"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10, permessage-deflate";
        assert_eq!(answer(&[offer], &takeover()).as_deref(), Some(BARE));
    }

    #[test]
    fn duplicate_client_max_window_bits_declined() {
        let offer: &[u8] = b"permessage-deflate; client_max_window_bits; client_max_window_bits=10";
        assert_eq!(answer(&[offer], &takeover()), None);
    }

    #[test]
    fn value_on_server_no_context_takeover_declined() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; server_no_context_takeover=1"],
                &takeover()
            ),
            None
        );
        assert_eq!(
            answer(
                &[br#"permessage-deflate; server_no_context_takeover="""#],
                &takeover()
            ),
            None
        );
    }

    #[test]
    fn value_on_client_no_context_takeover_declined() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; client_no_context_takeover=true"],
                &takeover()
            ),
            None
        );
    }

    #[test]
    fn server_max_window_bits_without_value_declined() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; server_max_window_bits"],
                &takeover()
            ),
            None
        );
    }

    #[test]
    fn server_max_window_bits_out_of_range_declined() {
        for value in ["7", "16", "0", "1", "99", "255", "256", "-1"] {
            let offer = format!("permessage-deflate; server_max_window_bits={value}");
            assert_eq!(answer(&[offer.as_bytes()], &takeover()), None, "{value}");
        }
    }

    #[test]
    fn server_max_window_bits_leading_zero_or_sign_declined() {
        for value in ["08", "010", "+9", "9.0", "0x9", "1e1"] {
            let offer = format!("permessage-deflate; server_max_window_bits={value}");
            assert_eq!(answer(&[offer.as_bytes()], &takeover()), None, "{value}");
        }
    }

    #[test]
    fn client_max_window_bits_bad_value_declined() {
        for value in ["7", "16", "08", "+10", "abc"] {
            let offer = format!("permessage-deflate; client_max_window_bits={value}");
            assert_eq!(answer(&[offer.as_bytes()], &takeover()), None, "{value}");
        }
    }

    #[test]
    fn every_legal_window_value_accepted() {
        for bits in 8..=15u8 {
            let offer = format!(
                "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
            );
            let params = params(&[offer.as_bytes()], &takeover()).unwrap();
            assert_eq!(
                (params.server_max_window_bits, params.client_max_window_bits),
                (bits, bits)
            );
        }
    }

    // ---- the answer: context takeover ----

    #[test]
    fn offered_server_no_context_takeover_is_answered() {
        let (params, answer) = negotiate(
            [&b"permessage-deflate; server_no_context_takeover"[..]],
            &takeover(),
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert!(params.server_no_context_takeover);
    }

    #[test]
    fn server_no_context_takeover_unrequested_by_config() {
        let config = DeflateConfig {
            server_context_takeover: false,
            ..takeover()
        };
        let (params, answer) = negotiate([&b"permessage-deflate"[..]], &config).unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert!(params.server_no_context_takeover);
    }

    #[test]
    fn server_keeps_context_when_allowed() {
        let params = params(&[b"permessage-deflate"], &takeover()).unwrap();
        assert!(!params.server_no_context_takeover);
    }

    #[test]
    fn client_no_context_takeover_asked_unrequested() {
        let config = DeflateConfig {
            client_context_takeover: false,
            ..takeover()
        };
        let (params, answer) = negotiate([&b"permessage-deflate"[..]], &config).unwrap();
        assert_eq!(answer, "permessage-deflate; client_no_context_takeover");
        assert!(params.client_no_context_takeover);
    }

    #[test]
    fn offered_client_no_context_takeover_is_in_force() {
        let (params, answer) = negotiate(
            [&b"permessage-deflate; client_no_context_takeover"[..]],
            &takeover(),
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; client_no_context_takeover");
        assert!(params.client_no_context_takeover);
    }

    #[test]
    fn client_keeps_context_when_allowed() {
        assert!(
            !params(&[b"permessage-deflate"], &takeover())
                .unwrap()
                .client_no_context_takeover
        );
    }

    // ---- the answer: server window ----

    #[test]
    fn offered_server_window_is_answered_even_at_15() {
        assert_eq!(
            answer(
                &[b"permessage-deflate; server_max_window_bits=15"],
                &takeover()
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=15")
        );
    }

    #[test]
    fn server_window_is_the_smaller_of_offer_and_config() {
        let config = DeflateConfig {
            server_max_window_bits: 11,
            ..takeover()
        };
        let offer: &[u8] = b"permessage-deflate; server_max_window_bits=13";
        assert_eq!(
            answer(&[offer], &config).as_deref(),
            Some("permessage-deflate; server_max_window_bits=11")
        );
        let offer: &[u8] = b"permessage-deflate; server_max_window_bits=9";
        assert_eq!(params(&[offer], &config).unwrap().server_max_window_bits, 9);
    }

    #[test]
    fn server_window_8_answered_8_whatever_the_config() {
        let config = DeflateConfig {
            server_max_window_bits: 9,
            ..takeover()
        };
        let offer: &[u8] = b"permessage-deflate; server_max_window_bits=8";
        assert_eq!(
            answer(&[offer], &config).as_deref(),
            Some("permessage-deflate; server_max_window_bits=8")
        );
    }

    #[test]
    fn server_window_from_config_named_unrequested() {
        let config = DeflateConfig {
            server_max_window_bits: 10,
            ..takeover()
        };
        let (params, answer) = negotiate([&b"permessage-deflate"[..]], &config).unwrap();
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(params.server_max_window_bits, 10);
    }

    #[test]
    fn full_server_window_unrequested_is_not_named() {
        let (params, answer) = negotiate([&b"permessage-deflate"[..]], &takeover()).unwrap();
        assert_eq!(answer, BARE);
        assert_eq!(params.server_max_window_bits, 15);
    }

    // ---- the answer: client window ----

    #[test]
    fn client_window_never_named_unoffered() {
        let config = DeflateConfig {
            client_max_window_bits: 9,
            ..takeover()
        };
        let (params, answer) = negotiate([&b"permessage-deflate"[..]], &config).unwrap();
        assert_eq!(answer, BARE);
        assert_eq!(params.client_max_window_bits, 15);
    }

    #[test]
    fn bare_client_window_limited_by_config() {
        let config = DeflateConfig {
            client_max_window_bits: 9,
            ..takeover()
        };
        let (params, answer) = negotiate(
            [&b"permessage-deflate; client_max_window_bits"[..]],
            &config,
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(params.client_max_window_bits, 9);
    }

    #[test]
    fn bare_client_window_with_full_config_not_named() {
        let (params, answer) = negotiate(
            [&b"permessage-deflate; client_max_window_bits"[..]],
            &takeover(),
        )
        .unwrap();
        assert_eq!(answer, BARE);
        assert_eq!(params.client_max_window_bits, 15);
    }

    #[test]
    fn client_window_value_is_the_smaller_of_offer_and_config() {
        let config = DeflateConfig {
            client_max_window_bits: 12,
            ..takeover()
        };
        let offer: &[u8] = b"permessage-deflate; client_max_window_bits=10";
        assert_eq!(
            answer(&[offer], &config).as_deref(),
            Some("permessage-deflate; client_max_window_bits=10")
        );
        let offer: &[u8] = b"permessage-deflate; client_max_window_bits=14";
        assert_eq!(
            answer(&[offer], &config).as_deref(),
            Some("permessage-deflate; client_max_window_bits=12")
        );
    }

    #[test]
    fn client_window_15_offered_full_config_not_named() {
        let offer: &[u8] = b"permessage-deflate; client_max_window_bits=15";
        assert_eq!(answer(&[offer], &takeover()).as_deref(), Some(BARE));
    }

    #[test]
    fn config_windows_out_of_range_are_clamped() {
        let config = DeflateConfig {
            server_max_window_bits: 3,
            client_max_window_bits: 200,
            ..takeover()
        };
        let (params, answer) = negotiate(
            [&b"permessage-deflate; client_max_window_bits"[..]],
            &config,
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=8");
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (8, 15)
        );
    }

    #[test]
    fn everything_at_once_in_fixed_order() {
        let config = DeflateConfig {
            server_max_window_bits: 12,
            client_max_window_bits: 10,
            ..takeover()
        };
        let offer: &[u8] = b"permessage-deflate; client_max_window_bits=11; server_max_window_bits=13; client_no_context_takeover; server_no_context_takeover";
        assert_eq!(
            answer(&[offer], &config).as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=10"
            )
        );
    }

    // ---- the pieces ----

    #[test]
    fn elements_split_outside_quotes_only() {
        let elements: Vec<&[u8]> = Elements::new(br#"a, b; c="x,\"y", ,d"#).collect();
        assert_eq!(elements, [&b"a"[..], br#" b; c="x,\"y""#, b" ", b"d"]);
    }

    #[test]
    fn quoted_value_must_be_a_token_once_unquoted() {
        // RFC 6455 §9.1; not visible through `negotiate`, where every
        // value that is not a token is also not a window size.
        let extension = parse_extension(br#"x; a="b\c"; d=e"#).unwrap();
        assert_eq!(extension.name, b"x");
        assert_eq!(extension.params[0].value.as_deref(), Some(&b"bc"[..]));
        assert_eq!(extension.params[1].value.as_deref(), Some(&b"e"[..]));
        assert_eq!(parse_extension(br#"x; a=" b""#), None);
        assert_eq!(parse_extension(br#"x; a="b,c""#), None);
    }

    #[test]
    fn window_bits_exact_forms_only() {
        let accepted: Vec<u8> = (0..=255u8)
            .flat_map(|a| {
                [vec![a], vec![b'1', a]]
                    .into_iter()
                    .filter_map(|value| window_bits(&value))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut accepted = accepted;
        accepted.sort_unstable();
        assert_eq!(accepted, (8..=15).collect::<Vec<_>>());
    }

    /// The answer read back as an offer-style extension: one element, the
    /// name, each named parameter; absent windows are 15.
    fn reread(answer: &str) -> Option<DeflateParams> {
        let mut elements = Elements::new(answer.as_bytes());
        let element = elements.next()?;
        if elements.next().is_some() {
            return None;
        }
        let extension = parse_extension(element)?;
        if extension.name != NAME {
            return None;
        }
        let offer = Offer::read(&extension.params)?;
        Some(DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover,
            server_max_window_bits: offer.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: offer.client_max_window_bits.flatten().unwrap_or(15),
        })
    }

    fn config_strategy() -> impl Strategy<Value = DeflateConfig> {
        (any::<bool>(), any::<bool>(), 0..=20u8, 0..=20u8).prop_map(|(s, c, sb, cb)| {
            DeflateConfig {
                server_context_takeover: s,
                client_context_takeover: c,
                server_max_window_bits: sb,
                client_max_window_bits: cb,
                ..DeflateConfig::default()
            }
        })
    }

    /// Bytes biased towards the grammar, so that offers get accepted too.
    fn header_strategy() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"permessage-deflate".to_vec()),
            Just(b"server_no_context_takeover".to_vec()),
            Just(b"client_no_context_takeover".to_vec()),
            Just(b"server_max_window_bits".to_vec()),
            Just(b"client_max_window_bits".to_vec()),
            Just(b"; ".to_vec()),
            Just(b", ".to_vec()),
            Just(b"=".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"1".to_vec()),
            (8..=15u8).prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
            config in config_strategy(),
        ) {
            let _ = negotiate(headers.iter().map(Vec::as_slice), &config);
        }

        #[test]
        fn answer_rereads_to_the_params(
            headers in proptest::collection::vec(header_strategy(), 0..4),
            config in config_strategy(),
        ) {
            if let Some((params, answer)) = negotiate(headers.iter().map(Vec::as_slice), &config) {
                prop_assert_eq!(reread(&answer), Some(params));
                let server_limit = clamp_window_bits(config.server_max_window_bits);
                prop_assert!((8..=server_limit).contains(&params.server_max_window_bits));
                prop_assert!((8..=15).contains(&params.client_max_window_bits));
                prop_assert!(params.server_no_context_takeover || config.server_context_takeover);
                prop_assert!(params.client_no_context_takeover || config.client_context_takeover);
                // The answer, offered again, is accepted unchanged.
                let again = negotiate([answer.as_bytes()], &config);
                prop_assert_eq!(again, Some((params, answer)));
            }
        }
    }
}
