//! Opaque page tokens: a cursor into an ordered listing, bound to the filter it was made for, so
//! a token reused with another filter is refused rather than silently skipping rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;
use uuid::Uuid;

use crate::time::Timestamp;

/// Where the next page starts: after the row with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last row shown.
    pub key: Timestamp,
    /// The id of the last row shown, which breaks ties in `key`.
    pub id: Uuid,
}

/// Encodes a cursor for a listing under `filter` (any string that identifies the filter).
pub fn encode(cursor: &Cursor, filter: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "v1|{}|{}|{}",
        cursor.key.micros(),
        cursor.id,
        filter
    ))
}

/// The most bytes of messages one page of a listing carries: well under the 4 MiB a gRPC client
/// takes by default (grpcurl, tonic, grpc-go), with room for the rest of the answer.
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// One page of a listing from `rows` (each message with the sort key and id of its row), in
/// order, and the token of the page after it (empty when none follows). The page ends early,
/// and a token is still given, when its messages would pass [`MAX_PAGE_BYTES`]; it always holds
/// at least one row, so paging goes on whatever is stored.
pub fn page<T: prost::Message>(
    rows: impl IntoIterator<Item = ((Timestamp, Uuid), T)>,
    has_more: bool,
    filter: &str,
) -> (Vec<T>, String) {
    let mut kept = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    let mut rows = rows.into_iter().peekable();
    while let Some((cursor, message)) = rows.next_if(|(_, m)| {
        // A repeated field costs its tag and length prefix besides the message.
        let size = m.encoded_len() + 10;
        kept.is_empty() || bytes + size <= MAX_PAGE_BYTES
    }) {
        bytes += message.encoded_len() + 10;
        last = Some(cursor);
        kept.push(message);
    }
    let more = has_more || rows.peek().is_some();
    let token = match (more, last) {
        (true, Some((key, id))) => encode(&Cursor { key, id }, filter),
        _ => String::new(),
    };
    (kept, token)
}

/// Decodes a token made by [`encode`] for the same `filter`; an empty token is the first page.
pub fn decode(token: &str, filter: &str) -> Result<Option<Cursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Status::invalid_argument(
            "page_token is not one this listing returned: pass next_page_token from the previous page unchanged, with the same filters",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(4, '|');
    let (Some("v1"), Some(key), Some(id), Some(token_filter)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if token_filter != filter {
        return Err(invalid());
    }
    Ok(Some(Cursor {
        key: Timestamp::from_micros(key.parse().map_err(|_| invalid())?),
        id: Uuid::parse_str(id).map_err(|_| invalid())?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_token_round_trips_under_its_own_filter_only() {
        let cursor = Cursor {
            key: Timestamp::from_micros(42),
            id: Uuid::new_v4(),
        };
        let token = encode(&cursor, "kind=GITHUB");
        assert_eq!(decode(&token, "kind=GITHUB").unwrap(), Some(cursor));
        assert!(decode(&token, "kind=GITLAB").is_err());
    }

    #[test]
    fn a_page_ends_early_by_bytes_and_still_gives_a_token() {
        // Twenty strings of 1 MiB: each page takes what fits under MAX_PAGE_BYTES.
        let rows: Vec<_> = (0..20)
            .map(|i| {
                (
                    (Timestamp::from_micros(i), Uuid::from_u128(i as u128)),
                    "x".repeat(1 << 20),
                )
            })
            .collect();
        let (page1, token) = page(rows.clone(), false, "f");
        assert!(!page1.is_empty() && page1.len() < 20);
        let encoded: usize = page1.iter().map(|m| m.encoded_len() + 10).sum();
        assert!(encoded <= MAX_PAGE_BYTES, "{encoded}");
        let cursor = decode(&token, "f").unwrap().expect("a next page");
        assert_eq!(cursor.key.micros(), page1.len() as i64 - 1);
        // One row larger than the whole budget still makes a page of one, with a token.
        let huge = vec![
            (
                (Timestamp::from_micros(1), Uuid::nil()),
                "y".repeat(5 << 20),
            ),
            ((Timestamp::from_micros(2), Uuid::nil()), String::new()),
        ];
        let (alone, token) = page(huge, false, "f");
        assert_eq!(alone.len(), 1);
        assert!(!token.is_empty());
        // A page that fits keeps the listing's own answer.
        let (all, token) = page(rows.into_iter().take(2), false, "f");
        assert_eq!((all.len(), token.as_str()), (2, ""));
    }

    #[test]
    fn garbage_tokens_are_invalid_arguments() {
        for bad in ["x", "!!!", &URL_SAFE_NO_PAD.encode("v2|1|2|")] {
            let err = decode(bad, "").unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
        assert_eq!(decode("", "").unwrap(), None);
    }
}
