//! Photo metadata. The bytes are files named by their SHA-256 in the store's photo folder; only
//! this metadata travels inside documents.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixMillis;
use crate::error::{Error, Result};
use crate::geo::GeoPoint;

pub(crate) const MAX_PHOTO_BYTES: u64 = 50 * 1024 * 1024;
const MIME_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/heic"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Lower-case hex SHA-256 of the file's bytes: its name in the photo folder.
    pub sha256: String,
    pub byte_size: u64,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub taken_at: Option<UnixMillis>,
    pub location: Option<GeoPoint>,
}

impl PhotoMeta {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::invalid("photo hash", "must be 64 lower-case hex digits (SHA-256)"));
        }
        if self.byte_size == 0 || self.byte_size > MAX_PHOTO_BYTES {
            return Err(Error::invalid("photo size", "must be between 1 byte and 50 MiB"));
        }
        if !MIME_TYPES.contains(&self.mime.as_str()) {
            return Err(Error::invalid("photo type", "must be image/jpeg, image/png, image/webp or image/heic"));
        }
        if self.width == 0 || self.height == 0 || self.width > 20_000 || self.height > 20_000 {
            return Err(Error::invalid("photo dimensions", "must be between 1 and 20000 pixels"));
        }
        if let Some(p) = &self.location {
            p.validate("photo location")?;
        }
        Ok(())
    }
}

/// SHA-256 (hex) and size of a file, read in blocks.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > MAX_PHOTO_BYTES {
            return Err(Error::invalid("photo size", "must be between 1 byte and 50 MiB"));
        }
        hasher.update(&buf[..n]);
    }
    let hex = hex::encode(hasher.finalize());
    Ok((hex, size))
}
