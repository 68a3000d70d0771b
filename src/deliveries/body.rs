//! How delivery bodies are kept: compressed with zstd when that pays (a 28 KB GitHub pull
//! request event becomes about 3 KB), so the log writes a ninth of the bytes and durable intake
//! is bound by the CPU rather than the disk. The encoding is stored beside each body, so bodies
//! written before compression existed (and small ones, kept as they are) read back unchanged.

use std::cell::RefCell;

pub use crate::entity::delivery::BodyEncoding;

/// Bodies shorter than this are kept as they are: compressing them saves little and costs a
/// frame header.
const MIN_COMPRESSED_LEN: usize = 512;

/// The zstd level: 1 is the fastest of the standard levels and already takes JSON to an
/// eighth or so of its size.
const LEVEL: i32 = 1;

/// A body as the log stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    pub bytes: Vec<u8>,
    /// `None`: `bytes` is the body as received; else how it is encoded.
    pub encoding: Option<BodyEncoding>,
}

impl StoredBody {
    /// Encodes a body for storage, compressing it when it is long enough for that to pay.
    pub fn encode(raw: Vec<u8>) -> StoredBody {
        if raw.len() < MIN_COMPRESSED_LEN {
            return StoredBody {
                bytes: raw,
                encoding: None,
            };
        }
        thread_local! {
            // One compression context per thread, reused: making one costs more than
            // compressing a small body.
            static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
        }
        let compressed = COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = zstd::bulk::Compressor::new(LEVEL).ok();
            }
            slot.as_mut().and_then(|c| c.compress(&raw).ok())
        });
        match compressed {
            Some(bytes) if bytes.len() < raw.len() => StoredBody {
                bytes,
                encoding: Some(BodyEncoding::Zstd),
            },
            // Incompressible (or zstd refused): keep it as it came.
            _ => StoredBody {
                bytes: raw,
                encoding: None,
            },
        }
    }

    /// The body as received, from what the log stored and the encoding stored beside it.
    pub fn decode(bytes: Vec<u8>, encoding: Option<BodyEncoding>) -> Result<Vec<u8>, String> {
        match encoding {
            None => Ok(bytes),
            Some(BodyEncoding::Zstd) => {
                decompress(&bytes).map_err(|e| format!("zstd body does not decompress: {e}"))
            }
        }
    }
}

/// The most a frame may say it holds for [`decompress`] to allocate that much up front; a
/// larger (or unstated) size is streamed instead.
const MAX_PREALLOCATED: u64 = 256 * 1024 * 1024;

/// Decompresses one stored body. [`StoredBody::encode`] writes the body's size in the frame, so
/// the whole body is decoded in one call into a buffer of exactly that size, with a decompression
/// context kept per thread and reused (making one costs more than decoding a small body). A
/// frame that does not state its size (or states an absurd one) is streamed.
fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    }
    let size = match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(size)) if size <= MAX_PREALLOCATED => size,
        _ => return zstd::stream::decode_all(bytes),
    };
    let capacity = usize::try_from(size).unwrap_or(usize::MAX);
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        let decompressor = slot.as_mut().expect("made above");
        decompressor.decompress(bytes, capacity)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_body_is_compressed_and_decodes_to_the_same_bytes() {
        let raw = br#"{"action":"opened","number":1,"pull_request":{"title":"x"}}"#.repeat(40);
        let stored = StoredBody::encode(raw.clone());
        assert_eq!(stored.encoding, Some(BodyEncoding::Zstd));
        assert!(stored.bytes.len() * 4 < raw.len(), "{}", stored.bytes.len());
        assert_eq!(
            StoredBody::decode(stored.bytes, stored.encoding).unwrap(),
            raw
        );
    }

    #[test]
    fn small_and_incompressible_bodies_are_kept_as_they_are() {
        let small = b"{\"zen\":\"ok\"}".to_vec();
        assert_eq!(
            StoredBody::encode(small.clone()),
            StoredBody {
                bytes: small,
                encoding: None
            }
        );
        // Bytes with no redundancy: zstd cannot make them shorter.
        let mut noise = vec![0u8; 4096];
        getrandom::fill(&mut noise).unwrap();
        let stored = StoredBody::encode(noise.clone());
        assert_eq!(stored.encoding, None);
        assert_eq!(stored.bytes, noise);
    }

    #[test]
    fn bodies_decode_one_after_another_on_one_thread_and_a_streamed_frame_decodes_too() {
        // The per-thread context is reused: many bodies of different sizes in a row.
        for n in [3usize, 40, 5, 400, 17] {
            let raw = format!(
                r#"{{"action":"synchronize","n":{n},"pad":"{}"}}"#,
                "ab".repeat(n * 100)
            )
            .into_bytes();
            let stored = StoredBody::encode(raw.clone());
            assert_eq!(stored.encoding, Some(BodyEncoding::Zstd), "{n}");
            assert_eq!(
                StoredBody::decode(stored.bytes, stored.encoding).unwrap(),
                raw,
                "{n}"
            );
        }
        // A frame that does not state its size (written by a streaming encoder) decodes as well.
        let raw = b"{\"zen\":\"Keep it logically awesome.\"}".repeat(100);
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), LEVEL).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &raw).unwrap();
        let streamed = encoder.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed)
                .ok()
                .flatten(),
            None,
            "the frame states no size"
        );
        assert_eq!(
            StoredBody::decode(streamed, Some(BodyEncoding::Zstd)).unwrap(),
            raw
        );
        // A body that is not what its frame says it is fails rather than coming back short.
        let stored = StoredBody::encode(raw.clone());
        let mut cut = stored.bytes.clone();
        cut.truncate(cut.len() - 4);
        assert!(StoredBody::decode(cut, Some(BodyEncoding::Zstd)).is_err());
    }

    #[test]
    fn a_broken_encoding_is_an_error_not_garbage() {
        // An unknown encoding name does not get this far: the row does not load.
        assert!(StoredBody::decode(b"not zstd".to_vec(), Some(BodyEncoding::Zstd)).is_err());
    }
}
