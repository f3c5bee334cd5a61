//! Criterion benchmarks of the fused kernels: each kernel, f32 and f64, dense and
//! per-trajectory gradient, at B = 65536, T = 100 and a small case, with throughput in bytes
//! (and elements) beside a plain parallel copy of the same input bytes measured in the same run.
//!
//! `cargo bench --bench kernels -- --measurement-time 3` (sample size 10 is set below).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nalgebra::DMatrix;
use rtb_trustpcl::kernels::bench::{bench_batch, kernel_bytes, parallel_copy};
use rtb_trustpcl::kernels::{evaluate_into, Float, GradForm, Kernel, KernelId};

fn bench_dtype<F: Float>(c: &mut Criterion, batch: usize, steps: usize) {
    let g = bench_batch::<F>(batch, steps).expect("benchmark batch");
    let b = &g.batch;
    let mut group = c.benchmark_group(format!("{}/B{batch}xT{steps}", F::NAME));
    group.sample_size(10);
    let n = batch * steps;
    // Copy reference: the 2·B·T input values into a second buffer (read + write bytes).
    let mut dst = vec![F::ZERO; 2 * n];
    group.throughput(Throughput::Bytes((4 * n * F::BYTES) as u64));
    group.bench_function("copy-reference", |bch| {
        bch.iter(|| {
            let (d0, d1) = dst.split_at_mut(n);
            parallel_copy(b.log_q().as_slice(), d0);
            parallel_copy(b.log_p().as_slice(), d1);
        })
    });
    drop(dst);
    let mut dense = DMatrix::from_element(steps, batch, F::ZERO);
    for id in KernelId::ALL {
        let kernel = match id {
            KernelId::Rtb => Kernel::Rtb { log_z: g.log_z },
            KernelId::Tpcl => Kernel::Tpcl { v0: g.v0 },
            KernelId::TpclWindowed => Kernel::TpclWindowed {
                windows: &g.windows_v,
            },
            KernelId::SubTb => Kernel::SubTb {
                windows: &g.windows_log_f,
            },
            KernelId::TpclSurrogate => Kernel::TpclSurrogate { v0: g.v0 },
            KernelId::ReinforceKl => Kernel::ReinforceKl,
            KernelId::Flawed => Kernel::Flawed {
                kappa: F::from_f64(0.5),
            },
        };
        for form in [GradForm::Dense, GradForm::PerTrajectory] {
            let form_name = match form {
                GradForm::Dense => "dense",
                GradForm::PerTrajectory => "per-trajectory",
            };
            group.throughput(Throughput::Bytes(kernel_bytes(b, id, form) as u64));
            group.bench_with_input(
                BenchmarkId::new(id.name(), form_name),
                &form,
                |bch, &form| {
                    bch.iter(|| {
                        let buf = (form == GradForm::Dense).then_some(&mut dense);
                        evaluate_into(b, &kernel, None, buf).expect("kernel")
                    })
                },
            );
        }
    }
    group.finish();
    // Elements per second for the headline kernels.
    let mut group = c.benchmark_group(format!("{}/B{batch}xT{steps}/elements", F::NAME));
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("rtb/per-trajectory", |bch| {
        bch.iter(|| evaluate_into(b, &Kernel::Rtb { log_z: g.log_z }, None, None).expect("kernel"))
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    for (batch, steps) in [(65_536, 100), (1024, 32)] {
        bench_dtype::<f32>(c, batch, steps);
        bench_dtype::<f64>(c, batch, steps);
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
