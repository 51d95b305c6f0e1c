//! Helpers shared by the hand-written benchmark harnesses.
#![allow(dead_code)]

/// The median of the samples (sorts them).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// `cargo test --benches` and `cargo bench -- --list` ask harnesses to
/// list their benchmarks: these harnesses have nothing to list.
pub(crate) fn listing_only() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// A number from the environment, or `default`.
pub(crate) fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Requests/s and the p99 latency in ms from `wrk --latency`'s output
/// (0 and NaN when missing).
pub(crate) fn wrk_figures(stdout: &[u8]) -> (f64, f64) {
    let text = String::from_utf8_lossy(stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| duration_ms(v.trim()))
        .unwrap_or(f64::NAN);
    (rps, p99)
}

/// `812.00us`, `1.20ms`, `2s` in milliseconds.
fn duration_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}
