//! Criterion: all of C1–C5 on a generated DAG of more than 10⁴ edges (goal: < 10 s), and on
//! the shipped `spec/generated.toml`. Export the same DAG for the sympy reference with
//! `cargo run --release -- generate --layers 12 --width 100 --fan-out 10 --terminals 50 --out big.toml`.
use criterion::{criterion_group, criterion_main, Criterion};
use rtb_trustpcl::claims::{verify_environment, ClaimContext, VerifyOptions};
use rtb_trustpcl::dag::generate::{layered, Shape};
use rtb_trustpcl::dag::load_file;
use rtb_trustpcl::dag::spec::validate;
use rtb_trustpcl::exact::Rational;
use std::time::Duration;

fn all_claims(c: &mut Criterion) {
    let shape = Shape {
        layers: 12,
        width: 100,
        terminals: 50,
        fan_out: 10,
        skip_percent: 20,
        beta: Rational::from_integer(2.into()),
        posteriors: true,
    };
    let big = validate(&layered(&shape, 0), "generated").expect("valid");
    assert!(big.edges.len() >= 10_000, "{} edges", big.edges.len());
    let small = load_file(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/generated.toml").as_ref())
        .expect("spec");
    let mut group = c.benchmark_group("exact");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function(format!("C1-C5 layered {} edges", big.edges.len()), |b| {
        b.iter(|| {
            let ctx = ClaimContext::new(&big, VerifyOptions::default()).expect("exact logs");
            let certs = verify_environment(&ctx);
            assert!(certs.iter().all(|c| c.holds == Some(true)));
        })
    });
    group.bench_function(
        format!("C1-C5 spec/generated.toml {} edges", small.edges.len()),
        |b| {
            b.iter(|| {
                let ctx = ClaimContext::new(&small, VerifyOptions::default()).expect("exact logs");
                let certs = verify_environment(&ctx);
                assert!(certs.iter().all(|c| c.holds == Some(true)));
            })
        },
    );
    group.finish();
}

criterion_group!(benches, all_claims);
criterion_main!(benches);
