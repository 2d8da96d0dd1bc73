//! Dev-only: what the tests, the demo and the benches build their worlds from, in one place.
//!
//! - [`district`]: the small district every core and end-to-end test starts from (one street, one
//!   community, two grids, a micro-grid, the people who work there, a clock the test moves);
//! - [`server`]: that district's office seeding a real `doorstep-server` on 127.0.0.1, and phones
//!   that enrol through its HTTP API as the app does;
//! - [`by_hand`]: documents and changes written as another client would write them, past the
//!   store's own write path (for the boundary's attacks);
//! - [`old_store`]: a store file as an older version of the app left it (for the upgrades).
//!
//! Dev-only: only test targets depend on it (the realistic data of any size that the demo and
//! the benches generate is the `doorstep` command's own, `cli/src/sample.rs`). It turns on the
//! core's `hooks` feature. All names and numbers in it are made up.

pub mod by_hand;
pub mod district;
pub mod old_store;
pub mod server;

pub use by_hand::*;
pub use district::*;
pub use old_store::*;
pub use server::*;

#[cfg(test)]
mod tests {
    /// Cargo finds the end-to-end suites only through `[[test]]` entries: one left out would
    /// never run.
    #[test]
    fn every_end_to_end_suite_is_listed_in_the_manifest() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let mut suites: Vec<String> = std::fs::read_dir(root.join("e2e"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".rs"))
            .collect();
        suites.sort();
        assert!(!suites.is_empty());
        for suite in suites {
            assert!(manifest.contains(&format!("path = \"e2e/{suite}\"")), "e2e/{suite} has no [[test]] entry");
        }
    }
}
