//! Places and photos: a point on the map, a photo file the app hands in and the metadata kept.

use super::*;

/// A WGS-84 position.
#[derive(Clone, Copy, Debug, PartialEq, uniffi::Record)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub(crate) fn to_core(self) -> Result<core::GeoPoint> {
        Ok(core::GeoPoint::new(self.lat, self.lon)?)
    }
}

impl From<core::GeoPoint> for GeoPoint {
    fn from(p: core::GeoPoint) -> Self {
        GeoPoint { lat: p.lat, lon: p.lon }
    }
}

pub(crate) fn opt_point(p: Option<GeoPoint>) -> Result<Option<core::GeoPoint>> {
    p.map(GeoPoint::to_core).transpose()
}

/// A photo the app took, by the path of its file: the core hashes it and keeps a copy in the
/// store's photo folder. Photo bytes never cross the FFI.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PhotoFile {
    pub path: String,
    /// `image/jpeg`, `image/png`, `image/webp` or `image/heic`.
    pub mime: String,
    pub width: u32,
    pub height: u32,
    #[uniffi(default = None)]
    pub taken_at: Option<i64>,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
}

/// A photo attached to a visit, report or report event.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Photo {
    /// SHA-256 of the file (its name in the photo folder).
    pub sha256: String,
    pub byte_size: u64,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub taken_at: Option<i64>,
    pub location: Option<GeoPoint>,
}

impl From<core::PhotoMeta> for Photo {
    fn from(p: core::PhotoMeta) -> Self {
        Photo {
            sha256: p.sha256,
            byte_size: p.byte_size,
            mime: p.mime,
            width: p.width,
            height: p.height,
            taken_at: p.taken_at,
            location: p.location.map(Into::into),
        }
    }
}
