//! The environment variables that override the builder (see the table in
//! the [`Builder`](crate::Builder) docs).

use std::env;

use super::{Builder, Format, Output};
use crate::error::{Error, ErrorKind};
use crate::output::Backpressure;

impl Builder {
    pub(super) fn apply_env(&mut self) -> Result<(), Error> {
        if let Some(v) = env_var("CORRLOG_FORMAT") {
            self.format = match v.to_ascii_lowercase().as_str() {
                "json" => Format::Json,
                "pretty" => Format::Pretty,
                "auto" => Format::Auto,
                _ => return Err(invalid_env("CORRLOG_FORMAT", v, "json, pretty or auto")),
            };
        }
        for var in ["CORRLOG_LEVEL", "RUST_LOG"] {
            if let Some(v) = env_var(var) {
                self.level = v;
                self.level_var = Some(var);
                break;
            }
        }
        if let Some(path) = env_var("CORRLOG_FILE") {
            self.output = Output::file(path);
        }
        if let Some(v) = env_var("CORRLOG_BACKPRESSURE") {
            self.backpressure = match v.to_ascii_lowercase().as_str() {
                "block" => Backpressure::default(),
                "drop" => Backpressure::Drop,
                _ => return Err(invalid_env("CORRLOG_BACKPRESSURE", v, "block or drop")),
            };
        }
        if let Some(v) = env_var("CORRLOG_QUEUE_BYTES") {
            self.queue_bytes = v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| invalid_env("CORRLOG_QUEUE_BYTES", v, "a positive byte count"))?;
        }
        Ok(())
    }
}

/// A variable's value, unless unset or blank.
pub(super) fn env_var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(super) fn invalid_env(var: &'static str, value: String, expected: &'static str) -> Error {
    Error::new(ErrorKind::InvalidEnv {
        var,
        value,
        expected,
    })
}
