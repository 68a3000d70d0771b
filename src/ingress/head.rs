//! The answers to request heads the HTTP server refuses before there is a request. hyper refuses
//! a head itself, with an empty 431 it cannot be told to word otherwise, in three cases: the head
//! is over `--max-header-bytes`, it has more than [`MAX_HEADERS`] header fields, or its
//! `Content-Length` is too large to be any body's length (2^64 - 2 or more: an overflow, which is
//! a malformed request, not a large head; past 2^64 hyper says 400, also with no body). [`HeadCheck`] wraps a connection for the server loop:
//! it keeps the bytes of the head being read, and when hyper writes its 431 it writes in its
//! place an answer that says which it was: 431 naming the limit passed, or 400 for the
//! `Content-Length` (in place of hyper's empty 400 too), each with a JSON `{"error": ...}` body as every other ingress answer.
//!
//! The head is kept only until it is complete (a blank line) or an answer starts, so a
//! connection holds at most one head's bytes (`--max-header-bytes`) more than hyper does, and
//! only while that head is arriving.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most header fields a request may have (hyper's own default, said outright).
pub const MAX_HEADERS: usize = 100;

/// What hyper writes when it refuses a head as too large.
const HYPERS_431: &[u8] = b"HTTP/1.1 431 ";
/// What hyper writes when it refuses a head as malformed (a `Content-Length` past `u64` among
/// other things); a request hyper let through never has such a `Content-Length`.
const HYPERS_400: &[u8] = b"HTTP/1.1 400 ";

/// The largest `Content-Length` hyper takes (`u64::MAX - 2`; the two above it mean "chunked"
/// and "until close" inside hyper).
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;

/// Why hyper refused a head.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// A `Content-Length` that is no length a body can have; holds the value as sent.
    ContentLengthOverflow(String),
    /// Over `--max-header-bytes` (also what is said when the head cannot be read back).
    TooManyBytes,
}

impl Refusal {
    /// Reads why `head` (the bytes of a head hyper refused, complete or not) was refused.
    fn of(head: &[u8]) -> Self {
        let end = head.windows(4).position(|w| w == b"\r\n\r\n");
        let fields = head[..end.unwrap_or(head.len())]
            .split(|&b| b == b'\n')
            .skip(1)
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty());
        let mut count = 0;
        for field in fields {
            count += 1;
            if count > MAX_HEADERS {
                return Refusal::TooManyHeaders;
            }
            let Some(colon) = field.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&field[..colon], &field[colon + 1..]);
            if end.is_some() && name.eq_ignore_ascii_case(b"content-length") {
                let value = String::from_utf8_lossy(value).trim().to_owned();
                let overflows = value.bytes().all(|b| b.is_ascii_digit())
                    && !matches!(value.parse::<u64>(), Ok(n) if n <= MAX_CONTENT_LENGTH);
                if !value.is_empty() && overflows {
                    return Refusal::ContentLengthOverflow(value);
                }
            }
        }
        Refusal::TooManyBytes
    }

    /// The whole answer written in place of hyper's: status line, headers and JSON body.
    fn answer(&self, max_header_bytes: usize) -> Vec<u8> {
        let (status, error) = match self {
            Refusal::TooManyHeaders => (
                "431 Request Header Fields Too Large",
                format!(
                    "the request has more than {MAX_HEADERS} header fields, the limit on header fields: send fewer"
                ),
            ),
            Refusal::ContentLengthOverflow(value) => {
                let shown: String = value.chars().take(40).collect();
                (
                    "400 Bad Request",
                    format!("Content-Length {shown} is not a length a body can have"),
                )
            }
            Refusal::TooManyBytes => (
                "431 Request Header Fields Too Large",
                format!(
                    "the request head (request line and headers) is over {max_header_bytes} bytes, the limit --max-header-bytes sets: send smaller headers"
                ),
            ),
        };
        let body = serde_json::json!({ "error": error }).to_string();
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// A connection as hyper sees it: the same bytes both ways, except that hyper's own 431 is
/// replaced by an answer that says why (see the module's documentation).
pub struct HeadCheck<S> {
    inner: S,
    /// The bytes read since the last answer started, until the head is complete.
    head: Vec<u8>,
    /// Whether `head` holds a whole head (nothing more is kept until the next answer).
    complete: bool,
    /// The most bytes kept: as many as hyper reads of a head.
    cap: usize,
    max_header_bytes: usize,
    /// The answer being written in place of hyper's, and how much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<S> HeadCheck<S> {
    /// Wraps `inner` for a server whose heads are at most `max_header_bytes` (hyper reads
    /// `max(max_header_bytes, 8192)` bytes of a head).
    pub fn new(inner: S, max_header_bytes: usize) -> Self {
        Self {
            inner,
            head: Vec::new(),
            complete: false,
            cap: max_header_bytes.max(8192),
            max_header_bytes,
            replacing: None,
        }
    }

    fn keep(&mut self, read: &[u8]) {
        if self.complete || self.head.len() >= self.cap {
            return;
        }
        // The blank line may straddle two reads.
        let from = self.head.len().saturating_sub(3);
        let n = read.len().min(self.cap - self.head.len());
        self.head.extend_from_slice(&read[..n]);
        self.complete = self.head[from..].windows(4).any(|w| w == b"\r\n\r\n");
    }

    /// An answer starts: what is read next is the next request's head.
    fn answer_started(&mut self) {
        self.complete = false;
        if self.head.capacity() > 8192 {
            self.head = Vec::new();
        } else {
            self.head.clear();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadCheck<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.keep(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadCheck<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            let refusal = if buf.starts_with(HYPERS_431) {
                Some(Refusal::of(&this.head))
            } else if buf.starts_with(HYPERS_400) {
                // hyper's own 400 for a length past u64; any other 400 passes as it is.
                Some(Refusal::of(&this.head))
                    .filter(|r| matches!(r, Refusal::ContentLengthOverflow(_)))
            } else {
                None
            };
            let Some(refusal) = refusal else {
                this.answer_started();
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            };
            this.replacing = Some((refusal.answer(this.max_header_bytes), 0));
        }
        let Some((answer, written)) = this.replacing.as_mut() else {
            unreachable!("set just above");
        };
        while *written < answer.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                other => return other,
            }
        }
        this.replacing = None;
        this.answer_started();
        // hyper's own 431 (a head alone, written whole here) counts as written.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each answer's head from one buffer, where its 431 is seen.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(fields: usize, extra: &str) -> Vec<u8> {
        let mut h = "POST /.api/webhooks/x HTTP/1.1\r\nHost: a\r\n".to_owned();
        for i in 1..fields {
            h.push_str(&format!("X-F{i}: v\r\n"));
        }
        h.push_str(extra);
        h.push_str("\r\n");
        h.into_bytes()
    }

    #[test]
    fn more_header_fields_than_the_limit_are_told_apart_from_a_long_head() {
        assert_eq!(
            Refusal::of(&head(MAX_HEADERS + 1, "")),
            Refusal::TooManyHeaders
        );
        // Cut off before its end, as hyper stops reading past its buffer.
        let long = head(MAX_HEADERS + 5, "");
        assert_eq!(
            Refusal::of(&long[..long.len() - 20]),
            Refusal::TooManyHeaders
        );
        let padded = head(3, &format!("X-Padding: {}\r\n", "a".repeat(70_000)));
        assert_eq!(Refusal::of(&padded[..65_536]), Refusal::TooManyBytes);
    }

    #[test]
    fn a_content_length_past_any_body_is_an_overflow() {
        for value in [
            "18446744073709551614",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            assert_eq!(
                Refusal::of(&head(2, &format!("Content-Length: {value}\r\n"))),
                Refusal::ContentLengthOverflow(value.to_owned()),
                "{value}"
            );
        }
        assert_eq!(
            Refusal::of(&head(2, "content-length:  18446744073709551613\r\n")),
            Refusal::TooManyBytes
        );
    }

    #[test]
    fn the_answer_is_a_whole_http_response_with_a_json_body() {
        let answer = String::from_utf8(Refusal::TooManyHeaders.answer(65_536)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains("100 header fields")
        );
    }
}
