//! Request id generation and validation.
//!
//! Run with `cargo bench --bench id`. Compares corrlog's generators (a
//! per-thread fast RNG, formatted on the stack) against the common
//! alternative of `Uuid::new_v4()` (OS randomness) + `to_string()`.
#![allow(missing_docs)]

use std::hint::black_box;

use corrlog::context::{MakeRequestId, UuidV4, UuidV7};
use corrlog::http::IdPolicy;
use corrlog::RequestId;
use criterion::{criterion_group, criterion_main, Criterion};

fn generate(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.bench_function("corrlog UuidV4", |b| {
        b.iter(|| black_box(UuidV4.make_request_id()))
    });
    g.bench_function("corrlog UuidV7", |b| {
        b.iter(|| black_box(UuidV7.make_request_id()))
    });
    g.bench_function("uuid new_v4 (OS rng) + to_string", |b| {
        b.iter(|| black_box(uuid::Uuid::new_v4().to_string()))
    });
    g.finish();
}

fn validate(c: &mut Criterion) {
    let policy = IdPolicy::default();
    let mut g = c.benchmark_group("validate");
    for (name, value) in [
        ("uuid", &b"550e8400-e29b-41d4-a716-446655440000"[..]),
        ("alb", &b"Root=1-67891233-abcdef012345678912345678"[..]),
        ("rejected crlf", &b"abc\r\nx"[..]),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(policy.parse(black_box(value))))
        });
    }
    g.bench_function("clone", |b| {
        let id = RequestId::generate();
        b.iter(|| black_box(id.clone()))
    });
    g.finish();
}

criterion_group!(benches, generate, validate);
criterion_main!(benches);
