//! Environment overrides, in a process of their own (env vars are global).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use corrlog::ErrorKind;

#[test]
fn environment_overrides_the_code() {
    let dir = std::env::temp_dir().join(format!("corrlog-env-{}", std::process::id()));
    let path = dir.join("logs/app.log");
    std::env::set_var("CORRLOG_FORMAT", "pretty");
    std::env::set_var("CORRLOG_LEVEL", "warn,orders=debug");
    std::env::set_var("CORRLOG_FILE", &path);
    std::env::set_var("CORRLOG_BACKPRESSURE", "drop");
    std::env::set_var("CORRLOG_QUEUE_BYTES", "65536");

    let (subscriber, logging) = corrlog::builder()
        .format(corrlog::Format::Json)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("filtered out");
        tracing::warn!(code = 7, "kept");
        tracing::debug!(target: "orders", "kept by the orders directive");
    });
    let report = logging.shutdown(Duration::from_secs(5));
    assert_eq!(report.stats.written, 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // Pretty, and not coloured: a file is not a terminal.
    assert!(
        lines[0].ends_with(" WARN builder_env: kept code=7"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("DEBUG orders: kept by the orders directive"));
    assert!(!text.contains('\x1b'));

    std::env::set_var("CORRLOG_FORMAT", "yaml");
    let err = corrlog::builder().build().unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::InvalidEnv {
            var: "CORRLOG_FORMAT",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "CORRLOG_FORMAT=\"yaml\" is not valid; expected json, pretty, auto, ecs, gcp or datadog"
    );
    std::env::set_var("CORRLOG_FORMAT", "json");
    std::env::set_var("CORRLOG_BUFFER", "everything");
    let err = corrlog::builder().build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "CORRLOG_BUFFER=\"everything\" is not valid; expected trace, debug, info or warn (the most verbose level to buffer), or off"
    );
    // Any level more verbose than the filter's can be buffered: at warn,
    // a request's INFO lines are kept and written when it fails.
    std::env::set_var("CORRLOG_BUFFER", "info");
    std::env::set_var("CORRLOG_LEVEL", "warn");
    std::env::remove_var("CORRLOG_FILE");
    let capture = corrlog::testing::TestLogs::new();
    let (subscriber, logging) = corrlog::builder()
        .output(corrlog::output::Destination::Writer(Box::new(
            capture.clone(),
        )))
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let ok = corrlog::RequestContext::new(corrlog::RequestId::new("buffer-ok").unwrap());
        ok.run(|| tracing::info!("dropped with its request"));
        let failed =
            corrlog::RequestContext::new(corrlog::RequestId::new("buffer-failed").unwrap());
        failed.run(|| {
            tracing::info!("kept until the failure");
            tracing::debug!("below the buffered level");
            tracing::error!("failed");
        });
    });
    logging.shutdown(Duration::from_secs(5));
    let messages: Vec<String> = capture
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].to_string())
        .collect();
    assert_eq!(messages, [r#""kept until the failure""#, r#""failed""#]);
    std::env::set_var("CORRLOG_FILE", &path);
    std::env::set_var("CORRLOG_LEVEL", "warn,orders=debug");
    std::env::set_var("CORRLOG_BUFFER", "off");
    std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", "service.version=1%");
    let err = corrlog::builder().build().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("OTEL_RESOURCE_ATTRIBUTES=\"service.version=1%\" is not valid"),
        "{err}"
    );
    std::env::remove_var("OTEL_RESOURCE_ATTRIBUTES");
    std::env::set_var("CORRLOG_QUEUE_BYTES", "lots");
    let err = corrlog::builder().build().unwrap_err();
    assert!(err.to_string().contains("a positive byte count"));

    std::env::set_var("CORRLOG_QUEUE_BYTES", "65536");
    std::env::set_var("CORRLOG_FILE", "/proc/corrlog-no-such-dir/app.log");
    let err = corrlog::builder().build().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OpenLogFile { .. }), "{err}");
    std::env::remove_var("CORRLOG_FILE");

    // A bad filter names the variable it came from.
    std::env::remove_var("CORRLOG_LEVEL");
    std::env::set_var("RUST_LOG", "info,orders=loud");
    let err = corrlog::builder().build().unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidEnv {
                var: "RUST_LOG",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("RUST_LOG=\"info,orders=loud\" is not valid"),
        "{err}"
    );
    std::env::set_var("CORRLOG_LEVEL", "orders=sometimes");
    let err = corrlog::builder().build().unwrap_err();
    assert!(err.to_string().starts_with("CORRLOG_LEVEL="), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
