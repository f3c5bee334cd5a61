//! Criterion: every claim (C1–C8, default options and budget, so enumeration cross-checks run
//! only where their cost estimate is within the budget) on the layered "many primes" DAGs of
//! issue 12 at about 440, 2,000 and 10,000 edges, and on the shipped `spec/generated.toml`.
//! Write the same DAGs for the sympy reference (`benches/sympy_reference.py`) with
//! `cargo run --release -- generate --many-primes --layers 7 --width 20 --fan-out 3 --seed 1 --out d440.toml`
//! (`--layers 9 --width 45 --fan-out 5`: 2,070 edges; `--layers 19 --width 100 --fan-out 5`:
//! 9,600 edges).
use criterion::{criterion_group, criterion_main, Criterion};
use rtb_trustpcl::claims::{verify_environment, ClaimContext, VerifyOptions};
use rtb_trustpcl::dag::generate::{layered, Shape};
use rtb_trustpcl::dag::load_file;
use rtb_trustpcl::dag::spec::validate;
use rtb_trustpcl::dag::Environment;
use rtb_trustpcl::exact::Rational;
use std::time::Duration;

fn verify(env: &Environment) {
    let ctx = ClaimContext::new(env, VerifyOptions::default()).expect("within the budget");
    let certs = verify_environment(&ctx);
    assert!(certs.iter().all(|c| c.holds != Some(false)));
}

fn all_claims(c: &mut Criterion) {
    let beta = Rational::from_integer(2.into());
    let shapes = [(7, 20, 3), (9, 45, 5), (19, 100, 5)];
    let mut group = c.benchmark_group("exact");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    for (layers, width, fan_out) in shapes {
        let shape = Shape::many_primes(layers, width, fan_out, beta.clone());
        let env = validate(&layered(&shape, 1), "generated").expect("valid");
        group.bench_function(
            format!(
                "C1-C8 many-primes {layers}x{width}x{fan_out} {} edges",
                env.edges.len()
            ),
            |b| b.iter(|| verify(&env)),
        );
    }
    let small = load_file(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/generated.toml").as_ref())
        .expect("spec");
    group.bench_function(
        format!("C1-C8 spec/generated.toml {} edges", small.edges.len()),
        |b| b.iter(|| verify(&small)),
    );
    group.finish();
}

criterion_group!(benches, all_claims);
criterion_main!(benches);
