//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set (and the demo built with
//! `--features otlp,opentelemetry`), the demo's spans go to
//! `<endpoint>/v1/traces` through `tracing-opentelemetry` and the OTLP span
//! exporter; its logs go to `<endpoint>/v1/logs` through corrlog's own
//! OTLP output (set up by the builder from the same variable), carrying
//! the ids of those spans.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetryLayer;

/// The span layer, and its provider (shut it down to send the last spans).
pub(crate) type Spans<S> = (OpenTelemetryLayer<S, SdkTracer>, SdkTracerProvider);

/// The span export, when the variable is set.
pub(crate) fn spans<S>() -> Result<Option<Spans<S>>, String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()));
    if !endpoint {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("cannot set up the OTLP span exporter: {e}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("corrlog-demo");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("corrlog-demo"));
    Ok(Some((layer, provider)))
}
