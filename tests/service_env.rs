//! The service identity from the environment is checked at start, in a
//! process of its own (env vars are global): it is written on every line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::ffi::OsStringExt;

use corrlog::ErrorKind;

fn start_error() -> (String, String) {
    let err = corrlog::builder().build().unwrap_err();
    let ErrorKind::InvalidEnv { var, .. } = err.kind() else {
        panic!("{err}");
    };
    (var.to_string(), err.to_string())
}

#[test]
fn a_runaway_or_undecodable_service_identity_stops_the_start() {
    // Within the cap: taken.
    std::env::set_var("OTEL_SERVICE_NAME", "n".repeat(255));
    let (_subscriber, logging) = corrlog::builder().build().unwrap();
    drop(logging);

    std::env::set_var("OTEL_SERVICE_NAME", "n".repeat(100_000));
    let (var, text) = start_error();
    assert_eq!(var, "OTEL_SERVICE_NAME");
    assert!(text.contains("at most 255 bytes"), "{text}");
    assert!(text.len() < 400, "the error quotes only a prefix: {text}");

    std::env::set_var(
        "OTEL_SERVICE_NAME",
        std::ffi::OsString::from_vec(b"orders\xff".to_vec()),
    );
    let (var, text) = start_error();
    assert_eq!(var, "OTEL_SERVICE_NAME");
    assert!(text.contains("UTF-8"), "{text}");
    std::env::remove_var("OTEL_SERVICE_NAME");

    let long = format!("service.version={}", "1".repeat(256));
    std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", long);
    let (var, text) = start_error();
    assert_eq!(var, "OTEL_RESOURCE_ATTRIBUTES");
    assert!(text.contains("at most 255 bytes"), "{text}");
    std::env::set_var(
        "OTEL_RESOURCE_ATTRIBUTES",
        std::ffi::OsString::from_vec(b"service.name=\xfe".to_vec()),
    );
    let (var, _) = start_error();
    assert_eq!(var, "OTEL_RESOURCE_ATTRIBUTES");
}
