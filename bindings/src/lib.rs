//! Placeholder for the uniffi layer (Kotlin, Swift, Python). It will hold no logic: each
//! exported method is a short call into `doorstep-core`. Until the bindings issue lands it only
//! re-exports the core so that the workspace layout is in place.

pub use doorstep_core as core;
