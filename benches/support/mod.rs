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
