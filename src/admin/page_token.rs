//! Opaque page tokens: a cursor into an ordered listing, bound to the filter it was made for, so
//! a token reused with another filter is refused rather than silently skipping rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;
use uuid::Uuid;

/// Where the next page starts: after the row with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last row shown (a time in microseconds).
    pub key: i64,
    /// The id of the last row shown, which breaks ties in `key`.
    pub id: Uuid,
}

/// Encodes a cursor for a listing under `filter` (any string that identifies the filter).
pub fn encode(cursor: &Cursor, filter: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{}|{}|{}", cursor.key, cursor.id, filter))
}

/// The token of the page after one that ended at `last` (its sort key and id), or empty when
/// no page follows.
pub fn next(has_more: bool, last: Option<(i64, Uuid)>, filter: &str) -> String {
    match (has_more, last) {
        (true, Some((key, id))) => encode(&Cursor { key, id }, filter),
        _ => String::new(),
    }
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
        key: key.parse().map_err(|_| invalid())?,
        id: Uuid::parse_str(id).map_err(|_| invalid())?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_under_its_own_filter_only() {
        let cursor = Cursor {
            key: 42,
            id: Uuid::new_v4(),
        };
        let token = encode(&cursor, "kind=GITHUB");
        assert_eq!(decode(&token, "kind=GITHUB").unwrap(), Some(cursor));
        assert!(decode(&token, "kind=GITLAB").is_err());
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
