//! The console line: `2026-01-21T10:30:00.123Z  INFO orders: message
//! request_id=... key=value`, values written as JSON (strings quoted and
//! escaped, so control characters never reach the terminal), optionally
//! coloured.

use tracing::Level;

use super::escape::escape_into;
use super::json::is_reserved;
use super::line::{level_name, write_access_headers, write_bound_fields, Line, Style};
use super::time::TimestampCache;

const DIM: &[u8] = b"\x1b[2m";
const RESET: &[u8] = b"\x1b[0m";

fn level_color(level: Level) -> &'static [u8] {
    match level {
        Level::TRACE => b"\x1b[35m",
        Level::DEBUG => b"\x1b[34m",
        Level::INFO => b"\x1b[32m",
        Level::WARN => b"\x1b[33m",
        Level::ERROR => b"\x1b[1;31m",
    }
}

/// Writes `text` between `code` and a reset when colouring.
fn painted(out: &mut Vec<u8>, color: bool, code: &[u8], text: impl FnOnce(&mut Vec<u8>)) {
    if color {
        out.extend_from_slice(code);
    }
    text(out);
    if color {
        out.extend_from_slice(RESET);
    }
}

/// Writes a whole line: the head (time, level, logger, message), the
/// request's ids and bound fields, the fields and a newline.
pub(crate) fn write_line(
    out: &mut Vec<u8>,
    clock: &mut TimestampCache,
    line: &Line<'_>,
    color: bool,
) {
    painted(out, color, DIM, |out| clock.write_raw(out, line.now));
    out.push(b' ');
    let level = level_name(line.level);
    out.extend(std::iter::repeat_n(b' ', 5 - level.len()));
    painted(out, color, level_color(line.level), |out| {
        out.extend_from_slice(level);
    });
    out.push(b' ');
    painted(out, color, DIM, |out| {
        escape_into(out, line.logger);
        out.push(b':');
    });
    out.push(b' ');
    out.extend_from_slice(line.message);
    if let Some(rc) = line.request {
        out.extend_from_slice(b" request_id=");
        escape_into(out, rc.id().as_str());
        if let Some(trace) = rc.trace() {
            out.extend_from_slice(b" trace_id=");
            out.extend_from_slice(trace.trace_hex());
            out.extend_from_slice(b" span_id=");
            out.extend_from_slice(trace.span_hex());
            out.extend_from_slice(b" trace_flags=");
            out.extend_from_slice(trace.flags_hex());
        }
        write_bound_fields(out, Style::Pretty { color }, rc, line.keys, line.policy);
    }
    for fields in line.fields {
        out.extend_from_slice(fields);
    }
    write_access_headers(out, Style::Pretty { color }, line);
    out.extend_from_slice(&line.constant.service);
    out.push(b'\n');
}

/// Starts a field: ` key=`, reserved keys renamed `fields.<key>` when
/// `rename` (a user's field, not corrlog's own).
pub(crate) fn key(out: &mut Vec<u8>, key: &str, color: bool, rename: bool) {
    out.push(b' ');
    painted(out, color, DIM, |out| {
        if rename && is_reserved(key) {
            out.extend_from_slice(b"fields.");
        }
        escape_into(out, key);
        out.push(b'=');
    });
}
