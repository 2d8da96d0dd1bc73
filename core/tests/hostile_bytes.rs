//! Bytes from a peer can be anything. Whatever they are, `merge_document` returns (an error or
//! a merge), never panics, and a refused merge leaves the store exactly as it was.

use doorstep_core::*;
use proptest::prelude::*;
use testkit::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn damaged_document_bytes_never_panic_or_change_the_store(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, f) = district(&dir.path().join("phone.sqlite"));
        let h = household(&mut s, &f, "401", &[CareTag::ElderlyAlone]);
        s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
        let grid = month_visits(&f);
        let mut bytes = s.save_document(&grid).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let tables = s.dump_query_tables().unwrap();
        let saved = s.save_document(&grid).unwrap();
        if s.merge_document(&grid, &bytes).is_err() {
            prop_assert_eq!(s.dump_query_tables().unwrap(), tables);
            prop_assert_eq!(s.save_document(&grid).unwrap(), saved);
        }
        s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    }

    #[test]
    fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, f) = district(&dir.path().join("phone.sqlite"));
        let grid = register(&f);
        prop_assert!(s.merge_document(&grid, &bytes).is_err());
        prop_assert!(s.document_ids().unwrap().iter().all(|d| d != &grid));
    }
}
