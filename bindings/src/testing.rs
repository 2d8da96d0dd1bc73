//! Exports only the test suites use (cargo feature `test-exports`, never in an app build): a
//! deliberate panic, to show that none crosses the FFI, and the Rust side of the FFI benchmark.

use std::time::Instant;

use doorstep_core::{OpenOptions, Store};

use crate::error::DoorstepError;
use crate::store::Doorstep;
use crate::types::NewVisit;

#[uniffi::export]
impl Doorstep {
    /// Panics inside a store call, with the store locked.
    pub fn panic_for_test(&self) -> Result<(), DoorstepError> {
        self.run(|_| panic!("a deliberate panic for the tests"))
    }
}

/// Panics outside any store call (uniffi's own guard turns it into an exception).
#[uniffi::export]
pub fn panic_outside_store_for_test() {
    panic!("a deliberate panic outside the store, for the tests")
}

/// Opens the store at `path` with the core directly (as a Rust app would, with the options the
/// bindings use), records `warmup` copies of `visit` untimed (loading the grid's document, as
/// the Kotlin side's store already has), then `count` timed; returns the mean microseconds per
/// timed visit. The Kotlin suite times the same visits through the FFI into an identical store.
#[uniffi::export]
pub fn rust_record_visit_us(path: String, visit: NewVisit, warmup: u32, count: u32) -> Result<f64, DoorstepError> {
    let mut store = Store::open(&path, OpenOptions { track_changes: true, ..OpenOptions::default() })?;
    let record = |store: &mut Store| -> Result<(), DoorstepError> {
        store.record_visit(visit.clone().into_core(Vec::new())?)?;
        store.take_changed_documents();
        Ok(())
    };
    for _ in 0..warmup {
        record(&mut store)?;
    }
    let start = Instant::now();
    for _ in 0..count {
        record(&mut store)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(count.max(1)))
}
