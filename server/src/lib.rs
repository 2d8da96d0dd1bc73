//! Placeholder for the sync server (axum + tokio over `doorstep-core`'s documents and store).
//! It will reuse the core's storage and document code rather than write its own.

pub use doorstep_core as core;
