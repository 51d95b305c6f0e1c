//! The access line, as the line layers see it.
//!
//! The access line is an ordinary `tracing` event, so every layer (OTLP
//! export, a user's own) sees its fields. The HTTP stage builds the line's
//! values ([`AccessLine`]) and dispatches its event with the values
//! pending in a per-thread slot ([`dispatch`]); corrlog's own line layers
//! read them from there, typed ([`write()`]), and skip the general field
//! visitor: the line is identical, written for a fraction of the cost
//! (about 1,300 instructions fewer per request: BENCHMARKS.md).
//!
//! The HTTP stage decides what the line says (`http::access`); this module
//! owns how it is handed over and written.

mod line;
mod write;

pub(crate) use self::line::{dispatch, emit, with_pending, AccessLine, Route, FIELDS};
pub(crate) use self::write::{write, AccessKeys, Out};
