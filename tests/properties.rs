//! Property tests for id validation and generation: they run in
//! `cargo test`; the fuzz targets in `fuzz/` drive the same functions with
//! coverage guidance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use corrlog::context::{MakeRequestId, UuidV4, UuidV7};
use corrlog::http::IdPolicy;
use corrlog::RequestId;
use proptest::prelude::*;

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:/+=@-".contains(&b)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Accepted exactly when 1-128 bytes of the allowed set; an accepted
    /// value comes back unchanged, never cleaned or cut.
    #[test]
    fn validation_matches_the_rule(value in proptest::collection::vec(any::<u8>(), 0..200)) {
        let policy = IdPolicy::default();
        let expected = !value.is_empty() && value.len() <= 128 && value.iter().all(|&b| allowed(b));
        prop_assert_eq!(policy.accepts(&value), expected);
        match policy.parse(&value) {
            Some(id) => prop_assert_eq!(id.as_str().as_bytes(), &value[..]),
            None => prop_assert!(!expected),
        }
    }

    /// Values built from the allowed set are always accepted.
    #[test]
    fn allowed_values_pass(value in "[A-Za-z0-9._:/+=@-]{1,128}") {
        prop_assert!(IdPolicy::default().accepts(value.as_bytes()));
        let id = RequestId::new(&value).unwrap();
        prop_assert_eq!(id.as_str(), value.as_str());
    }

    /// A custom rule can narrow, never widen past the safety floor.
    #[test]
    fn custom_rules_keep_the_floor(value in proptest::collection::vec(any::<u8>(), 0..140)) {
        let anything = IdPolicy::custom(|_| true);
        if anything.accepts(&value) {
            prop_assert!(value.iter().all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
            prop_assert!(!value.is_empty() && value.len() <= 128);
        }
    }
}

#[test]
fn generated_ids_are_unique_and_valid() {
    let policy = IdPolicy::default();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50_000 {
        for id in [UuidV4.make_request_id(), UuidV7.make_request_id()] {
            assert!(policy.accepts(id.as_str().as_bytes()));
            assert!(seen.insert(id));
        }
    }
}
