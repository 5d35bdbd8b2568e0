//! Reading the client's `Sec-WebSocket-Extensions` offers and choosing
//! the permessage-deflate parameters (RFC 7692 §5, §7.1).

use super::{DeflateConfig, DeflateParams};

/// The parameters agreed for the first acceptable permessage-deflate
/// offer among `offers` (the values of every `Sec-WebSocket-Extensions`
/// header, in order), and the header value to answer with; `None` if no
/// offer is acceptable or none was made.
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a [u8]>,
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    let _ = (offers.into_iter(), config);
    None
}
