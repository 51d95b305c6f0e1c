//! Id validation: never panics; an accepted value is returned unchanged and
//! is safe in a header and a JSON string.
#![no_main]

use corrlog::http::IdPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = IdPolicy::default();
    if let Some(id) = policy.parse(data) {
        assert_eq!(id.as_str().as_bytes(), data);
        assert!(data.len() <= 128);
        assert!(data.iter().all(|b| b.is_ascii_graphic() && *b != b'"' && *b != b'\\'));
        assert!(http_safe(id.as_str()));
    }
});

fn http_safe(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7f).contains(&b))
}
