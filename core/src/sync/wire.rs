//! The bytes of one sync message, as specified in `docs/PROTOCOL.md`.
//!
//! A message is a 4-byte header (`D`, `S`, version, encoding) followed by one CBOR map, the
//! *batch*, optionally deflated (raw DEFLATE, RFC 1951). A batch carries entries for many
//! documents at once; each entry is an Automerge sync message, a whole document, a request for a
//! whole document, or the digest of the heads the sender holds.
//!
//! Decoding is strict and bounded: a frame over [`MAX_MESSAGE_BYTES`] (before or after
//! inflating), unknown versions or encodings, more than [`MAX_ENTRIES`] entries, or CBOR that
//! does not match the batch are all [`Error::Protocol`]; nothing here panics on any input.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Largest message, compressed or not (a whole 64 MiB document fits, with room to spare).
pub const MAX_MESSAGE_BYTES: usize = 72 << 20;
/// Most entries in one batch.
pub const MAX_ENTRIES: usize = 10_000;
/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

const MAGIC: [u8; 2] = *b"DS";
const PLAIN: u8 = 0;
const DEFLATE: u8 = 1;
/// Bodies smaller than this are not worth deflating.
const DEFLATE_FROM: usize = 128;

/// What the initiator of a session talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The sync server: documents are found through its change feed and the phone's dirty ones.
    Server,
    /// Another phone: documents are found by comparing inventories.
    Peer,
}

/// Who is speaking; the first message of each side in peer mode, the first request to a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub mode: Mode,
    /// The user the sending device is registered to.
    pub user: String,
    /// The sending device's Automerge actor id (hex).
    pub device: String,
    /// Peer mode, responder: digest over the documents both sides may hold and their heads.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub summary: Option<Vec<u8>>,
}

/// What an entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `data` is an Automerge sync message for the document.
    Sync,
    /// `data` is the whole document (an Automerge save, possibly followed by changes).
    Save,
    /// The sender lacks the document and asks for it whole; no `data`.
    Want,
    /// The sender holds the document at heads whose digest is `data` ([`heads_digest`]).
    Heads,
}

/// One document's part of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub doc: String,
    pub kind: Kind,
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
    /// `sync` and `save` entries with changes: the signatures that cover them (docs/PROTOCOL.md
    /// §10), one per device whose changes the entry carries, or the deployment's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vouchers: Vec<crate::voucher::Voucher>,
}

impl Entry {
    /// An entry without changes (`want`, `heads`), or whose changes need no signature.
    pub fn new(doc: impl ToString, kind: Kind, data: Vec<u8>) -> Entry {
        Entry { doc: doc.to_string(), kind, data, vouchers: Vec::new() }
    }
}

/// One message of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<Hello>,
    /// Server mode: in a request, the feed position the phone has seen up to; in a response, the
    /// position the listed documents bring it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    /// Server mode, response: more changed documents than fit were left for the next request.
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
    /// Server mode, response: the request's cursor is beyond this server's feed (it was restored
    /// from a backup), so the listing starts again from 0.
    #[serde(default, skip_serializing_if = "is_false")]
    pub feed_reset: bool,
    /// Peer mode: this batch's `heads` entries list every document the sender may share.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inventory: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docs: Vec<Entry>,
    /// Peer mode: the responder refuses the message (the server answers with an HTTP status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Documents whose entries in the previous message were refused, each with why; the rest of
    /// that message was taken in. Nothing of a refused document's entries was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
    /// Server mode: in a request, registers whose households' clocks the phone asks for as the
    /// visits of months before its window say them (`households` empty); in the response, the
    /// registers the device may read, with their households' clocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Earlier>,
    /// Server mode: in a request, old-layout grid documents (`grid/<id>`) the phone holds, asking
    /// whether the server converted them; in the response, those it converted at the heads it
    /// holds. The phone lets its copy go once the server holds every change of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub converted: Vec<String>,
}

/// One register's households' clocks from the visits of months before `before` (`YYYY-MM`):
/// what a phone whose window starts at `before` cannot count from documents it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earlier {
    /// `register/<unit id>`.
    pub register: String,
    pub before: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub households: Vec<EarlierClocks>,
}

/// One household's clocks as the visits of those months set them (milliseconds, UTC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierClocks {
    pub household: String,
    /// The last home visit (bell checks do not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_visit_at: Option<i64>,
    /// The last contact (anything but an unanswered bell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_at: Option<i64>,
    /// The first unanswered bell after that contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered_bell_at: Option<i64>,
}

/// Why a message was refused; nothing of it was kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// One of the codes in `docs/PROTOCOL.md`.
    pub code: String,
    pub message: String,
}

/// Why one document's entries were refused while the rest of the message was taken in
/// (`docs/PROTOCOL.md` §2, *Refused documents*).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub doc: String,
    /// `forbidden_document` or `too_large`.
    pub code: String,
    pub message: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => serde_bytes::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<serde_bytes::ByteBuf>::deserialize(d).map(|o| o.map(|b| b.into_vec()))
    }
}

impl Batch {
    /// The message bytes: header and CBOR, deflated when that makes it smaller.
    pub fn encode(&self) -> Vec<u8> {
        let mut cbor = Vec::new();
        ciborium::into_writer(self, &mut cbor).expect("writing CBOR to memory cannot fail");
        if cbor.len() >= DEFLATE_FROM {
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&cbor).expect("deflating to memory cannot fail");
            let packed = z.finish().expect("deflating to memory cannot fail");
            if packed.len() < cbor.len() {
                return frame(DEFLATE, &packed);
            }
        }
        frame(PLAIN, &cbor)
    }

    /// Reads a message, refusing anything malformed, truncated, oversized or of another version.
    pub fn decode(bytes: &[u8]) -> Result<Batch> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(Error::protocol(format!("the message is over the limit of {MAX_MESSAGE_BYTES} bytes")));
        }
        if bytes.len() < 4 || bytes[..2] != MAGIC {
            return Err(Error::protocol("it is not a Doorstep sync message"));
        }
        if bytes[2] != VERSION {
            return Err(Error::protocol(format!(
                "it speaks protocol version {}, this app speaks {VERSION}; update the older side",
                bytes[2]
            )));
        }
        let body = &bytes[4..];
        let inflated;
        let cbor: &[u8] = match bytes[3] {
            PLAIN => body,
            DEFLATE => {
                let mut out = Vec::new();
                let mut z = flate2::bufread::DeflateDecoder::new(body);
                (&mut z)
                    .take(MAX_MESSAGE_BYTES as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|_| Error::protocol("its compressed body is damaged"))?;
                if out.len() > MAX_MESSAGE_BYTES {
                    return Err(Error::protocol("its body inflates beyond the message limit"));
                }
                if !z.into_inner().is_empty() {
                    return Err(Error::protocol("bytes follow its compressed body"));
                }
                inflated = out;
                &inflated
            }
            other => return Err(Error::protocol(format!("unknown body encoding {other}"))),
        };
        let mut rest = cbor;
        let batch: Batch = ciborium::from_reader(&mut rest).map_err(|e| {
            // ciborium's errors carry Rust debug text for I/O failures: say what it means.
            Error::protocol(match e {
                ciborium::de::Error::Io(_) => "its body is cut short".to_string(),
                ciborium::de::Error::Syntax(at) => format!("its body is not valid CBOR (at byte {at})"),
                ciborium::de::Error::Semantic(_, why) => format!("its body is not a valid batch ({why})"),
                ciborium::de::Error::RecursionLimitExceeded => "its body nests too deeply".to_string(),
            })
        })?;
        if !rest.is_empty() {
            return Err(Error::protocol("bytes follow its body"));
        }
        if batch.docs.len() > MAX_ENTRIES || batch.rejected.len() > MAX_ENTRIES {
            return Err(Error::protocol(format!("it has more than {MAX_ENTRIES} entries")));
        }
        Ok(batch)
    }
}

fn frame(encoding: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(encoding);
    out.extend_from_slice(body);
    out
}

/// The digest that stands for a set of heads: SHA-256 over the sorted 32-byte hashes, first 16
/// bytes. Two replicas with the same digest hold the same document state.
pub(crate) fn heads_digest(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut h = Sha256::new();
    for head in &sorted {
        h.update(head.0);
    }
    h.finalize()[..16].to_vec()
}

/// The digest over a set of documents and their heads digests (ordered by document id): two
/// phones with equal summaries have nothing to exchange.
pub fn summary_digest<'a>(docs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut h = Sha256::new();
    for (doc, digest) in docs {
        h.update(doc.as_bytes());
        h.update([0]);
        h.update(digest);
    }
    h.finalize()[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        Batch {
            hello: Some(Hello { mode: Mode::Server, user: "u1".into(), device: "ab".into(), summary: None }),
            cursor: Some(42),
            docs: vec![Entry { doc: "grid/G1".into(), kind: Kind::Sync, data: vec![7; 300], vouchers: Vec::new() }],
            ..Batch::default()
        }
    }

    #[test]
    fn round_trips_plain_and_deflated() {
        let b = sample();
        let bytes = b.encode();
        assert_eq!(bytes[3], DEFLATE, "300 equal bytes compress");
        assert_eq!(Batch::decode(&bytes).unwrap(), b);
        let small = Batch { cursor: Some(3), ..Batch::default() };
        let bytes = small.encode();
        assert_eq!(bytes[3], PLAIN);
        assert_eq!(Batch::decode(&bytes).unwrap(), small);
    }

    #[test]
    fn refuses_bad_frames() {
        let good = sample().encode();
        for bad in [
            &b""[..],
            &b"DS"[..],
            &b"XX\x01\x00\xa0"[..],
            &b"DS\x09\x00\xa0"[..],
            &b"DS\x01\x07\xa0"[..],
            &good[..good.len() / 2],
            &[&Batch { cursor: Some(1), ..Batch::default() }.encode()[..], &[0xa0][..]].concat()[..],
        ] {
            assert!(matches!(Batch::decode(bad), Err(Error::Protocol(_))), "{bad:?}");
        }
    }

    #[test]
    fn more_than_ten_thousand_refusals_are_refused() {
        let refusal = Rejection { doc: "grid/G1".into(), code: "too_large".into(), message: String::new() };
        let batch = |n: usize| Batch { rejected: vec![refusal.clone(); n], ..Batch::default() };
        assert!(Batch::decode(&batch(MAX_ENTRIES).encode()).is_ok());
        assert!(matches!(Batch::decode(&batch(MAX_ENTRIES + 1).encode()), Err(Error::Protocol(_))));
    }

    #[test]
    fn a_deflate_bomb_is_refused() {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_MESSAGE_BYTES >> 20) + 2 {
            z.write_all(&zeros).unwrap();
        }
        let bomb = frame(DEFLATE, &z.finish().unwrap());
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(Batch::decode(&bomb), Err(Error::Protocol(_))));
    }
}
