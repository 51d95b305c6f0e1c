//! [`Service`]: which service, version, instance and environment wrote a
//! line, encoded once per layer and copied into every line.

use super::escape::write_str;
use super::line::Style;
use crate::context::RequestId;

/// The identity every line carries: service name, version, instance id and
/// deployment environment, the OpenTelemetry resource attributes
/// `service.name`, `service.version`, `service.instance.id` and
/// `deployment.environment.name`.
///
/// Set it with [`Builder::service`](crate::Builder::service) (where the
/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` variables override
/// it) or [`LogLayer::service`](crate::LogLayer::service). Fields left
/// unset are omitted from the lines, except the instance id: when none is
/// given, a random UUID made once at start names this process, so two
/// replicas never look like one.
///
/// The fields are written after the event's fields, under each format's
/// own names (see the [format table](crate::fmt#formats)); they are encoded
/// once, when the layer is made, so a line costs one copy of a few bytes
/// and no allocation.
///
/// ```
/// use corrlog::fmt::Service;
/// use corrlog::{testing::TestLogs, LogLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let service = Service::new("orders")
///     .version(env!("CARGO_PKG_VERSION"))
///     .instance_id("orders-7d9f-x2")
///     .environment("production");
/// let capture = TestLogs::new();
/// let layer = LogLayer::new(capture.clone()).service(service);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info!(target: "orders", "ready");
/// });
/// let line = &capture.lines()[0];
/// assert!(line.ends_with(concat!(
///     r#""logger":"orders","service.name":"orders","service.version":""#,
///     env!("CARGO_PKG_VERSION"),
///     r#"","service.instance.id":"orders-7d9f-x2","deployment.environment.name":"production"}"#
/// )));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) environment: Option<String>,
}

impl Service {
    /// A service called `name`, other fields unset.
    pub fn new(name: impl Into<String>) -> Self {
        Service {
            name: Some(name.into()),
            ..Service::default()
        }
    }

    /// The service's version (`service.version`), e.g.
    /// `env!("CARGO_PKG_VERSION")` or a build's commit.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// This instance's id (`service.instance.id`), e.g. the pod name.
    /// Defaults to a random UUID made once per process.
    #[must_use]
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// The deployment environment (`deployment.environment.name`), e.g.
    /// `production` or `staging`.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The service name, if set.
    ///
    /// ```
    /// use corrlog::fmt::Service;
    ///
    /// assert_eq!(Service::new("orders").name(), Some("orders"));
    /// assert_eq!(Service::default().environment("prod").name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The fields set in `other` replace the ones here.
    pub(crate) fn merge(&mut self, other: Service) {
        let Service {
            name,
            version,
            instance_id,
            environment,
        } = other;
        for (mine, theirs) in [
            (&mut self.name, name),
            (&mut self.version, version),
            (&mut self.instance_id, instance_id),
            (&mut self.environment, environment),
        ] {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Service::default()
    }

    /// The same, with the default instance id filled in.
    pub(crate) fn with_default_instance(mut self) -> Self {
        if self.instance_id.is_none() {
            self.instance_id = Some(RequestId::generate().as_str().to_owned());
        }
        self
    }

    /// The fields as this style writes them, ready to copy into a line:
    /// `,"key":"value"...` (or ` key="value"` for pretty lines).
    pub(crate) fn encode(&self, style: Style) -> Box<[u8]> {
        let mut out = Vec::new();
        let field = |out: &mut Vec<u8>, key: &str, value: &Option<String>| {
            if let Some(value) = value {
                style.raw_key(out, key);
                write_str(out, value);
            }
        };
        match style {
            Style::Json | Style::Pretty { .. } => {
                field(&mut out, "service.name", &self.name);
                field(&mut out, "service.version", &self.version);
                field(&mut out, "service.instance.id", &self.instance_id);
                field(&mut out, "deployment.environment.name", &self.environment);
            }
            Style::Ecs => {
                field(&mut out, "service.name", &self.name);
                field(&mut out, "service.version", &self.version);
                field(&mut out, "service.node.name", &self.instance_id);
                field(&mut out, "service.environment", &self.environment);
            }
            Style::Datadog => {
                field(&mut out, "service", &self.name);
                field(&mut out, "version", &self.version);
                field(&mut out, "env", &self.environment);
                field(&mut out, "instance_id", &self.instance_id);
            }
            Style::Gcp => {
                // Error Reporting groups by `serviceContext`, which needs
                // a service name; the instance and environment are labels,
                // which Cloud Logging indexes.
                if self.name.is_some() {
                    out.extend_from_slice(b",\"serviceContext\":{");
                    let start = out.len();
                    field(&mut out, "service", &self.name);
                    field(&mut out, "version", &self.version);
                    out.remove(start);
                    out.push(b'}');
                }
                if self.instance_id.is_some() || self.environment.is_some() {
                    out.extend_from_slice(b",\"logging.googleapis.com/labels\":{");
                    let start = out.len();
                    field(&mut out, "service.instance.id", &self.instance_id);
                    field(&mut out, "deployment.environment.name", &self.environment);
                    out.remove(start);
                    out.push(b'}');
                }
            }
        }
        out.into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_takes_only_the_fields_set() {
        let mut code = Service::new("orders").version("1.0").environment("dev");
        code.merge(Service {
            version: Some("2.0".into()),
            ..Service::default()
        });
        assert_eq!(
            code,
            Service::new("orders").version("2.0").environment("dev")
        );
        assert!(Service::default().is_empty());
        assert!(!code.is_empty());
    }

    #[test]
    fn the_default_instance_id_is_filled_once() {
        let given = Service::new("a")
            .instance_id("pod-1")
            .with_default_instance();
        assert_eq!(given.instance_id.as_deref(), Some("pod-1"));
        let made = Service::new("a").with_default_instance();
        let id = made.instance_id.clone().unwrap();
        assert_eq!(id.len(), 36);
        assert_ne!(
            Service::new("a").with_default_instance().instance_id,
            Some(id)
        );
    }

    #[test]
    fn each_style_names_the_fields_its_way() {
        let s = Service::new("o")
            .version("1")
            .instance_id("i")
            .environment("e");
        let text = |style| String::from_utf8(s.encode(style).into_vec()).unwrap();
        assert_eq!(
            text(Style::Json),
            r#","service.name":"o","service.version":"1","service.instance.id":"i","deployment.environment.name":"e""#
        );
        assert_eq!(
            text(Style::Pretty { color: false }),
            r#" service.name="o" service.version="1" service.instance.id="i" deployment.environment.name="e""#
        );
        assert_eq!(
            text(Style::Ecs),
            r#","service.name":"o","service.version":"1","service.node.name":"i","service.environment":"e""#
        );
        assert_eq!(
            text(Style::Datadog),
            r#","service":"o","version":"1","env":"e","instance_id":"i""#
        );
        assert_eq!(
            text(Style::Gcp),
            r#","serviceContext":{"service":"o","version":"1"},"logging.googleapis.com/labels":{"service.instance.id":"i","deployment.environment.name":"e"}"#
        );
        // Unset fields are left out; no service name, no serviceContext.
        let partial = Service {
            environment: Some("e".into()),
            ..Service::default()
        };
        assert_eq!(
            String::from_utf8(partial.encode(Style::Gcp).into_vec()).unwrap(),
            r#","logging.googleapis.com/labels":{"deployment.environment.name":"e"}"#
        );
        assert!(Service::default().encode(Style::Gcp).is_empty());
        assert_eq!(
            String::from_utf8(Service::new("o").encode(Style::Datadog).into_vec()).unwrap(),
            r#","service":"o""#
        );
    }
}
