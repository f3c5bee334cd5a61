//! Criterion benchmarks of the fused kernels: each kernel, f32 and f64, dense and
//! per-trajectory gradient, at B = 65536, T = 100 and a small case, with throughput in bytes
//! (counted as `bench` counts them) beside the copy (ordinary and streaming stores) and read
//! references measured in the same run. The inputs, kernels and byte counts come from
//! `kernels::bench::BenchSetup`, the same setup `rtb-trustpcl bench` uses.
//!
//! `cargo bench --bench kernels -- --measurement-time 3` (sample size 10 is set below).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtb_trustpcl::kernels::bench::{
    parallel_copy, parallel_copy_streaming, parallel_read, BenchSetup,
};
use rtb_trustpcl::kernels::{Float, GradForm, KernelId};

fn bench_dtype<F: Float>(c: &mut Criterion, batch: usize, steps: usize) {
    let mut setup = BenchSetup::<F>::new(batch, steps).expect("benchmark batch");
    let mut group = c.benchmark_group(format!("{}/B{batch}xT{steps}", F::NAME));
    group.sample_size(10);
    let n = batch * steps;
    {
        let b = setup.batch();
        // Copy reference: the 2·B·T input values into a second buffer (read + write bytes).
        let mut dst = vec![F::ZERO; 2 * n];
        group.throughput(Throughput::Bytes((4 * n * F::BYTES) as u64));
        // With ordinary and with streaming stores (`bench`'s copy floor is the faster).
        let copy_ordinary: fn(&[F], &mut [F]) = parallel_copy;
        for (name, copy) in [
            ("copy-reference", copy_ordinary),
            ("copy-reference-streaming", parallel_copy_streaming),
        ] {
            group.bench_function(name, |bch| {
                bch.iter(|| {
                    let (d0, d1) = dst.split_at_mut(n);
                    copy(b.log_q().as_slice(), d0);
                    copy(b.log_p().as_slice(), d1);
                })
            });
        }
        group.throughput(Throughput::Bytes((2 * n * F::BYTES) as u64));
        group.bench_function("read-reference", |bch| {
            bch.iter(|| parallel_read(b.log_q().as_slice(), b.log_p().as_slice()))
        });
    }
    for id in KernelId::ALL {
        for (form, form_name) in [
            (GradForm::PerTrajectory, "per-trajectory"),
            (GradForm::Dense, "dense"),
        ] {
            group.throughput(Throughput::Bytes(setup.bytes(id, form) as u64));
            group.bench_with_input(
                BenchmarkId::new(id.name(), form_name),
                &form,
                |bch, &form| bch.iter(|| setup.run(id, form).expect("kernel")),
            );
        }
    }
    group.finish();
    // Elements per second for the headline kernel.
    let mut group = c.benchmark_group(format!("{}/B{batch}xT{steps}/elements", F::NAME));
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("rtb/per-trajectory", |bch| {
        bch.iter(|| {
            setup
                .run(KernelId::Rtb, GradForm::PerTrajectory)
                .expect("kernel")
        })
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    for (batch, steps) in [(65_536, 100), (1024, 32)] {
        bench_dtype::<f32>(c, batch, steps);
        bench_dtype::<f64>(c, batch, steps);
    }
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotting backend (plotters) panicked with `FontUnavailable` on
    // the machine of session 16 after the first benchmark; the figures are the printed times
    // and throughputs.
    config = Criterion::default().without_plots();
    targets = kernels
}
criterion_main!(benches);
