//! What a request may hold while the server reads and answers it. Every request body, on every
//! route, is read here and nowhere else, so one set of limits holds everywhere:
//!
//! - at most `max_body_bytes`: a Content-Length over it is refused (413) before a byte of the
//!   body is read, and a body without one is cut off there;
//! - within `body_read_timeout_secs` (408), so a client that stops sending frees what it held;
//! - at most `max_in_flight_bytes` of bodies at once, all requests together, and one request at
//!   a time per device (429 `busy`, with `Retry-After`): one device, or many, cannot make the
//!   server hold more memory than it was given.
//!
//! Bytes are reserved before the body is read, by its Content-Length, or the largest body when
//! it has none (chunked), and held until the request is answered. A request is refused at
//! once rather than queued: a queue would hold the connection and its memory all the same.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, Code};
use crate::Config;

pub(crate) struct Limits {
    max_body: usize,
    max_in_flight: usize,
    body_timeout: Duration,
    in_flight: Arc<Semaphore>,
    busy_devices: Arc<Mutex<HashSet<String>>>,
}

/// What one request holds until it is answered: its bytes of the server-wide budget and, for a
/// device, its device's one slot.
pub(crate) struct Held {
    _bytes: OwnedSemaphorePermit,
    _device: Option<DeviceSlot>,
}

struct DeviceSlot {
    busy_devices: Arc<Mutex<HashSet<String>>>,
    device: String,
}

impl Drop for DeviceSlot {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy_devices.lock() {
            busy.remove(&self.device);
        }
    }
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Limits {
        // A semaphore counts at most `usize::MAX >> 3` permits, and one request takes at most
        // `u32::MAX` of them: bytes beyond either could never be reserved anyway.
        let max_in_flight = config.max_in_flight_bytes.min(Semaphore::MAX_PERMITS);
        Limits {
            max_body: config.max_body_bytes,
            max_in_flight,
            body_timeout: Duration::from_secs(config.body_read_timeout_secs),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            busy_devices: Arc::default(),
        }
    }

    /// Reads a request's whole body under the limits; `device` is the authenticated device
    /// sending it, if any. What is returned must be kept until the request is answered.
    pub(crate) async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        device: Option<&str>,
    ) -> Result<(Bytes, Held), ApiError> {
        let too_large =
            || ApiError::new(Code::TooLarge, format!("the body is over the limit of {} bytes", self.max_body));
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let reserve = match declared {
            Some(n) if n > self.max_body as u64 => return Err(too_large()),
            Some(n) => n as usize,
            None => self.max_body,
        };
        let device = match device {
            Some(id) => Some(self.take_device_slot(id)?),
            None => None,
        };
        let bytes = reserve.min(self.max_in_flight).min(u32::MAX as usize) as u32;
        let permit = self.in_flight.clone().try_acquire_many_owned(bytes).map_err(|_| {
            ApiError::new(Code::Busy, "the server is taking in as much as it can hold; try again shortly")
        })?;
        let held = Held { _bytes: permit, _device: device };
        match tokio::time::timeout(self.body_timeout, Limited::new(body, self.max_body).collect()).await {
            Err(_) => Err(ApiError::new(
                Code::Timeout,
                format!("the body did not arrive within {} seconds", self.body_timeout.as_secs()),
            )),
            Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) => Err(ApiError::new(Code::BadRequest, "the body could not be read")),
            Ok(Ok(collected)) => Ok((collected.to_bytes(), held)),
        }
    }

    /// Bytes reserved by the requests in flight now.
    pub(crate) fn bytes_in_flight(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }

    fn take_device_slot(&self, device: &str) -> Result<DeviceSlot, ApiError> {
        let mut busy = self.busy_devices.lock().map_err(|_| ApiError::internal("the in-flight lock is poisoned"))?;
        if !busy.insert(device.to_string()) {
            return Err(ApiError::new(Code::Busy, "this device already has a request in flight; send one at a time"));
        }
        Ok(DeviceSlot { busy_devices: self.busy_devices.clone(), device: device.to_string() })
    }
}
