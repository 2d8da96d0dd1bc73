//! Automerge's binary chunks, read just far enough to bound what loading them would cost
//! before Automerge itself sees them.
//!
//! Automerge inflates DEFLATE-compressed change chunks and document columns without a limit, so
//! a few KB of hostile bytes could make a store allocate gigabytes. Every chunk another replica
//! sends passes [`check`] first: it splits concatenated chunks, and inflates each compressed part
//! (with a limit) only to count its size. Nothing here interprets a change's content; that is
//! the boundary's job (`store::boundary`).

use std::io::Read;

use crate::error::{Error, Result};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
pub(crate) const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
/// Column specifications with this bit set are DEFLATE-compressed.
const DEFLATED_COLUMN: u32 = 0b1000;

/// Most bytes the compressed parts of one message's chunks may inflate to: room for a whole
/// document at its limit, a few times over, and far below what a bomb would take.
pub(crate) const MAX_INFLATED_BYTES: u64 = 128 << 20;

fn cut() -> Error {
    Error::protocol("an Automerge chunk is cut short or malformed")
}

/// Splits concatenated Automerge chunks: each is the magic bytes, a 4-byte checksum, a type
/// byte, the body's length as unsigned LEB128, and the body.
pub(crate) fn split(mut bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 10 || bytes[..4] != MAGIC {
            return Err(cut());
        }
        let mut body = &bytes[9..];
        let len = leb128(&mut body)?;
        let header = bytes.len() - body.len();
        let end = usize::try_from(len).ok().and_then(|l| l.checked_add(header)).filter(|e| *e <= bytes.len());
        let end = end.ok_or_else(cut)?;
        chunks.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Ok(chunks)
}

/// The type byte of a chunk [`split`] returned.
pub(crate) fn kind(chunk: &[u8]) -> u8 {
    chunk[8]
}

/// Checks that the chunks in `bytes` are well framed and that their compressed parts inflate to
/// at most [`MAX_INFLATED_BYTES`] together, and a compressed change to at most `max_change`.
pub(crate) fn check(bytes: &[u8], max_change: usize) -> Result<()> {
    let mut budget = MAX_INFLATED_BYTES;
    for chunk in split(bytes)? {
        let mut body = &chunk[9..];
        leb128(&mut body)?;
        match kind(chunk) {
            CHANGE => {}
            COMPRESSED_CHANGE => {
                let n = inflated_len(body, (max_change as u64).min(budget))?;
                if n > max_change as u64 {
                    return Err(Error::refused(
                        crate::error::RefusalCode::TooLarge,
                        format!("a compressed change inflates past the limit of {max_change} bytes"),
                    ));
                }
                budget -= n;
            }
            DOCUMENT => budget = check_document(body, budget)?,
            other => return Err(Error::protocol(format!("unknown Automerge chunk type {other}"))),
        }
    }
    Ok(())
}

/// A document chunk's body: actors, heads, then the change and op column layouts, then the
/// columns' bytes in that order. Returns what is left of the budget.
fn check_document(mut body: &[u8], mut budget: u64) -> Result<u64> {
    for _ in 0..leb128(&mut body)? {
        let n = leb128(&mut body)?;
        skip(&mut body, n)?;
    }
    let heads = leb128(&mut body)?;
    skip(&mut body, heads.checked_mul(32).ok_or_else(cut)?)?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        for _ in 0..leb128(&mut body)? {
            let spec = leb128(&mut body)?;
            let len = leb128(&mut body)?;
            columns.push((spec, len));
        }
    }
    for (spec, len) in columns {
        let len_usize = usize::try_from(len).map_err(|_| cut())?;
        let data = body.get(..len_usize).ok_or_else(cut)?;
        body = &body[len_usize..];
        if spec as u32 & DEFLATED_COLUMN != 0 {
            let n = inflated_len(data, budget)?;
            budget = budget.checked_sub(n).ok_or_else(too_much)?;
        }
    }
    Ok(budget)
}

fn too_much() -> Error {
    Error::refused(
        crate::error::RefusalCode::TooLarge,
        format!("the compressed parts of the message inflate past the limit of {MAX_INFLATED_BYTES} bytes"),
    )
}

/// How many bytes raw DEFLATE `data` inflates to, reading at most `limit + 1`.
fn inflated_len(data: &[u8], limit: u64) -> Result<u64> {
    let mut z = flate2::bufread::DeflateDecoder::new(data).take(limit.saturating_add(1));
    let n = std::io::copy(&mut z, &mut std::io::sink()).map_err(|_| Error::protocol("a compressed part is damaged"))?;
    if n > limit {
        return Err(too_much());
    }
    Ok(n)
}

fn skip(body: &mut &[u8], n: u64) -> Result<()> {
    let n = usize::try_from(n).ok().filter(|n| *n <= body.len()).ok_or_else(cut)?;
    *body = &body[n..];
    Ok(())
}

fn leb128(body: &mut &[u8]) -> Result<u64> {
    let (mut value, mut shift) = (0u64, 0u32);
    loop {
        let (&b, rest) = body.split_first().ok_or_else(cut)?;
        *body = rest;
        if shift > 63 {
            return Err(cut());
        }
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{transaction::Transactable, AutoCommit, ROOT};

    #[test]
    fn honest_documents_and_changes_pass() {
        let mut am = AutoCommit::new();
        for i in 0..200 {
            am.put(ROOT, format!("k{i}"), "x".repeat(500)).unwrap();
            am.commit();
        }
        check(&am.save(), 1 << 20).unwrap();
        let mut change = am.get_last_local_change().unwrap().clone();
        check(&change.bytes(), 1 << 20).unwrap();
        check(change.raw_bytes(), 1 << 20).unwrap();
    }

    #[test]
    fn a_compressed_change_or_column_that_inflates_too_far_is_refused() {
        use std::io::Write;
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 4 << 20]).unwrap();
        let bomb = z.finish().unwrap();
        // A compressed change chunk holding the bomb.
        let chunk = frame(COMPRESSED_CHANGE, &bomb);
        assert!(matches!(check(&chunk, 1 << 20), Err(Error::Refused { code, .. }) if code == "too_large"));
        assert!(check(&chunk, 8 << 20).is_ok(), "within a larger limit it is only counted");
        assert!(matches!(check(&chunk[..chunk.len() - 1], 1 << 20), Err(Error::Protocol(_))));
        // A document chunk with no actors or heads and one deflated change column, the bomb
        // 40 times over: past the message's inflation budget.
        let mut body = vec![0, 0, 40];
        for _ in 0..40 {
            body.push(DEFLATED_COLUMN as u8);
            push_leb(&mut body, bomb.len());
        }
        body.push(0);
        for _ in 0..40 {
            body.extend_from_slice(&bomb);
        }
        let doc = frame(DOCUMENT, &body);
        assert!(matches!(check(&doc, 1 << 20), Err(Error::Refused { code, .. }) if code == "too_large"));
        // One such column (4 MiB inflated) is within the budget.
        let mut body = vec![0, 0, 1, DEFLATED_COLUMN as u8];
        push_leb(&mut body, bomb.len());
        body.push(0);
        body.extend_from_slice(&bomb);
        check(&frame(DOCUMENT, &body), 1 << 20).unwrap();
    }

    fn push_leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                break;
            }
        }
    }

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut chunk = MAGIC.to_vec();
        chunk.extend_from_slice(&[0; 4]);
        chunk.push(kind);
        push_leb(&mut chunk, body.len());
        chunk.extend_from_slice(body);
        chunk
    }
}
