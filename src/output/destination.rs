//! [`Destination`]: where the builder writes.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use super::RollingFileBuilder;
#[cfg(doc)]
use super::{Pipeline, RollingFile};

/// Where the [builder](crate::Builder)'s lines go, through its
/// [`Pipeline`]: I/O on the writer thread, never on the request path.
///
/// ```
/// use corrlog::output::{Destination, Period, RollingFile};
///
/// let to_stderr = corrlog::builder().output(Destination::Stderr);
/// // Rotated at 100 MiB, 10 old files kept, unless set otherwise:
/// let to_file = corrlog::builder().output(Destination::File(RollingFile::builder("logs/app.log")));
/// let daily = Destination::File(RollingFile::builder("logs/app.log").period(Some(Period::Daily)));
/// # drop((to_stderr, to_file, daily));
/// ```
#[non_exhaustive]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A [`RollingFile`], opened when logging starts (the builder's
    /// [`init`](crate::Builder::init) or [`build`](crate::Builder::build)
    /// fails if it cannot be).
    File(RollingFileBuilder),
    /// Any writer.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Stdout => f.write_str("Stdout"),
            Destination::Stderr => f.write_str("Stderr"),
            Destination::File(file) => f.debug_tuple("File").field(file).finish(),
            Destination::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

impl Destination {
    pub(crate) fn is_terminal(&self) -> bool {
        match self {
            Destination::Stdout => io::stdout().is_terminal(),
            Destination::Stderr => io::stderr().is_terminal(),
            _ => false,
        }
    }
}
