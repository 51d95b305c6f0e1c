//! What the request layer knows about gRPC: which requests are gRPC calls,
//! the status a call ended with, how many messages its response carried,
//! and the `INTERNAL` status a caught panic becomes.
//!
//! Nothing here depends on tonic: gRPC is HTTP/2 with a content type,
//! length-prefixed messages and a `grpc-status` trailer, so any gRPC server
//! on tower gets the same treatment.

use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// The gRPC status header (in trailers, or in the headers of a
/// trailers-only response).
pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `INTERNAL`, what a caught panic becomes.
pub(crate) const INTERNAL: u16 = 13;
/// `UNKNOWN`, what an unreadable or missing `grpc-status` counts as (as
/// gRPC clients read it).
pub(crate) const UNKNOWN: u16 = 2;

/// Whether a request is a gRPC call: `content-type: application/grpc`,
/// alone or with a `+codec` or parameters. gRPC-Web (`application/grpc-web`)
/// carries its status inside the body and is treated as plain HTTP.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().strip_prefix(b"application/grpc"))
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
}

/// The status code in `headers`, if they carry one. A value that is not
/// one of the specification's codes (0 to 16, in decimal) counts as
/// `UNKNOWN`, as clients read it, and is never logged as sent.
pub(crate) fn status(headers: &HeaderMap) -> Option<u16> {
    headers.get(GRPC_STATUS).map(|value| {
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > 2 || !bytes.iter().all(u8::is_ascii_digit) {
            return UNKNOWN;
        }
        let code = bytes.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if code > 16 {
            UNKNOWN
        } else {
            code
        }
    })
}

/// The name of a status code, as the gRPC specification spells it. Codes
/// beyond the specification's read as `UNKNOWN`, as clients treat them.
pub(crate) fn status_name(code: u16) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The HTTP status a gRPC status corresponds to (the mapping of
/// `google.rpc.Code`), which picks the access line's level: OK as a 2xx,
/// caller errors as 4xx, server errors as 5xx.
pub(crate) fn http_equivalent(code: u16) -> u16 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        // UNKNOWN, INTERNAL, DATA_LOSS and codes beyond the table.
        _ => 500,
    }
}

/// `grpc-message` is percent-encoded: controls, non-ASCII and `%`.
const GRPC_MESSAGE_ENCODE: &AsciiSet = &CONTROLS.add(b'%');

/// The status headers of an `INTERNAL` error naming the request id, for a
/// trailers-only response or the trailers of a stream. The panic message
/// stays in the log: a client is told that something failed and which id
/// to quote, not what.
pub(crate) fn internal_error(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(GRPC_STATUS, HeaderValue::from_static("13"));
    let message = format!("internal error; request id {id}");
    let encoded = utf8_percent_encode(&message, GRPC_MESSAGE_ENCODE).to_string();
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert(GRPC_MESSAGE, value);
    }
    headers
}

/// Counts the messages in a gRPC body from its data frames, however they
/// are split: each message is a 5-byte prefix (a flag byte, then its length
/// as a big-endian u32) and its bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Messages {
    count: u64,
    /// Bytes of the current message still to skip.
    remaining: u64,
    /// How much of the current prefix has been read, and its length bytes.
    prefix_read: u8,
    length: [u8; 4],
}

impl Messages {
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                data = &data[n..];
                self.remaining -= n as u64;
                continue;
            }
            // The flag byte is skipped; the next four are the length.
            if self.prefix_read > 0 {
                self.length[usize::from(self.prefix_read) - 1] = data[0];
            }
            data = &data[1..];
            self.prefix_read += 1;
            if self.prefix_read == 5 {
                self.prefix_read = 0;
                self.count += 1;
                self.remaining = u64::from(u32::from_be_bytes(self.length));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len));
        out
    }

    #[test]
    fn counts_messages_however_the_frames_split_them() {
        let mut body = Vec::new();
        for len in [0, 1, 4, 5, 300, 0, 70_000] {
            body.extend(message(len));
        }
        for chunk in [1, 2, 3, 5, 6, 7, 64, 1000, body.len()] {
            let mut messages = Messages::default();
            for part in body.chunks(chunk) {
                messages.feed(part);
            }
            assert_eq!(messages.count(), 7, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_prefix_cut_short_is_not_a_message_yet() {
        let mut messages = Messages::default();
        messages.feed(&[0, 0, 0, 0]);
        assert_eq!(messages.count(), 0);
        messages.feed(&[3, 1, 2, 3]);
        assert_eq!(messages.count(), 1);
        messages.feed(&[0, 0, 0, 0, 0]);
        assert_eq!(messages.count(), 2);
    }

    #[test]
    fn grpc_content_types() {
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=utf-8", true),
            ("application/grpc-web", false),
            ("application/grpc-web+proto", false),
            ("application/grpcx", false),
            ("application/json", false),
            ("text/application/grpc", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc(&headers), grpc, "{value}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn statuses_are_read_as_numbers_or_unknown() {
        for (value, code) in [
            ("0", Some(0)),
            ("13", Some(13)),
            ("16", Some(16)),
            ("17", Some(2)),
            ("99", Some(2)),
            ("999", Some(2)),
            ("05", Some(5)),
            ("", Some(2)),
            ("-1", Some(2)),
            ("1 ", Some(2)),
            ("x", Some(2)),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(GRPC_STATUS, HeaderValue::from_static(value));
            assert_eq!(status(&headers), code, "{value:?}");
        }
        assert_eq!(status(&HeaderMap::new()), None);
    }

    #[test]
    fn every_code_has_its_name_and_class() {
        let table = [
            (0, "OK", 200),
            (1, "CANCELLED", 499),
            (2, "UNKNOWN", 500),
            (3, "INVALID_ARGUMENT", 400),
            (4, "DEADLINE_EXCEEDED", 504),
            (5, "NOT_FOUND", 404),
            (6, "ALREADY_EXISTS", 409),
            (7, "PERMISSION_DENIED", 403),
            (8, "RESOURCE_EXHAUSTED", 429),
            (9, "FAILED_PRECONDITION", 400),
            (10, "ABORTED", 409),
            (11, "OUT_OF_RANGE", 400),
            (12, "UNIMPLEMENTED", 501),
            (13, "INTERNAL", 500),
            (14, "UNAVAILABLE", 503),
            (15, "DATA_LOSS", 500),
            (16, "UNAUTHENTICATED", 401),
            (17, "UNKNOWN", 500),
            (999, "UNKNOWN", 500),
        ];
        for (code, name, http) in table {
            assert_eq!(status_name(code), name);
            assert_eq!(http_equivalent(code), http, "{name}");
        }
    }

    #[test]
    fn the_internal_error_names_the_id_percent_encoded() {
        let headers = internal_error("req-1%\u{e9}");
        assert_eq!(headers[GRPC_STATUS], "13");
        assert_eq!(
            headers[GRPC_MESSAGE],
            "internal error; request id req-1%25%C3%A9"
        );
    }
}
