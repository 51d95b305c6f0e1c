//! Errors of set-up calls.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A set-up step failed. The message says what to do about it.
///
/// Only set-up returns errors: logging itself never does, since a failing
/// output is counted and reported, never raised at the call site.
///
/// ```
/// let err = corrlog::builder().level("info,=[").use_env(false).build().unwrap_err();
/// assert!(matches!(err.kind(), corrlog::ErrorKind::InvalidFilter { .. }));
/// assert!(err.to_string().contains("use a level (info)"));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong.
///
/// ```
/// let err = corrlog::output::RollingFile::builder("/proc/no-such-dir/app.log").open().unwrap_err();
/// assert!(matches!(err.kind(), corrlog::ErrorKind::OpenLogFile { .. }));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A log file or its folder could not be opened or created.
    OpenLogFile {
        /// The path tried.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The log file path is a symbolic link, which corrlog does not follow.
    SymlinkLogFile {
        /// The path tried.
        path: PathBuf,
    },
    /// A global `tracing` subscriber was already installed.
    SubscriberAlreadySet,
    /// An environment variable has a value corrlog cannot use.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it accepts.
        expected: &'static str,
    },
    /// An environment variable that holds secrets (the OTLP headers) is
    /// malformed. The error says where, never the value.
    InvalidSecretEnv {
        /// The variable.
        var: &'static str,
        /// Where it went wrong: a member's position, or the header whose
        /// value is wrong.
        at: String,
        /// What it accepts.
        expected: &'static str,
    },
    /// A level or filter directive could not be parsed.
    InvalidFilter {
        /// The directive.
        directive: String,
        /// The parser's message.
        message: String,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::OpenLogFile { path, source } => write!(
                f,
                "cannot open log file {}: {source}; check that its folder exists and is writable",
                path.display()
            ),
            ErrorKind::SymlinkLogFile { path } => write!(
                f,
                "log file {} is a symbolic link, which corrlog does not follow (whoever can \
                 write its folder could point it at another file); give the real file's path",
                path.display()
            ),
            ErrorKind::SubscriberAlreadySet => f.write_str(
                "a global tracing subscriber is already set; call corrlog's init once, \
                 before any other tracing_subscriber init, or build the layers yourself",
            ),
            ErrorKind::InvalidEnv {
                var,
                value,
                expected,
            } => write!(f, "{var}={value:?} is not valid; expected {expected}"),
            ErrorKind::InvalidSecretEnv { var, at, expected } => write!(
                f,
                "{var} is not valid at {at} (its value is not shown: it may hold secrets); \
                 expected {expected}"
            ),
            ErrorKind::InvalidFilter { directive, message } => write!(
                f,
                "invalid log filter {directive:?}: {message}; use a level (info) or \
                 directives like \"info,orders=debug\""
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::OpenLogFile { source, .. } => Some(source),
            _ => None,
        }
    }
}
