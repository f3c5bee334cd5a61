//! `gradcheck` end to end: every check holds on correct kernels (several shapes, seeds, β, both
//! float types), each mutant makes its affected checks fail, the CLI's exit codes and JSON
//! schema, and the CUDA path (skipped with a reason where no GPU is present).
use std::process::Command;

use rtb_trustpcl::agreement::gradcheck::{run_checks, Device, Dtype, GradcheckConfig};
use rtb_trustpcl::mutant::Mutant;

fn cfg(batch: usize, steps: usize, dtype: Dtype, beta: f64, seed: u64) -> GradcheckConfig {
    GradcheckConfig {
        batch,
        steps,
        dtype,
        beta,
        seed,
        ..Default::default()
    }
}

#[test]
fn all_checks_hold_on_correct_kernels() {
    for (b, t, dtype, beta, seed) in [
        (2000, 50, Dtype::F32, 1.5, 0),
        (1500, 20, Dtype::F64, 3.0, 1),
        (300, 700, Dtype::F32, 0.25, 2), // rows longer than a summation block
        (500, 1, Dtype::F64, 2.0, 3),
        (3000, 8, Dtype::F32, 1.0, 4),
    ] {
        let r = run_checks(&cfg(b, t, dtype, beta, seed)).unwrap();
        for c in &r.checks {
            assert!(
                c.holds,
                "{b}x{t} {dtype:?} β={beta}: {} ratio {}",
                c.id, c.max_error_over_bound
            );
        }
        assert!(r.all_hold);
        assert_eq!(r.checks.len(), 18);
    }
}

/// The checks each mutant must break (at β ≠ 1), and nothing else.
fn affected(m: Mutant) -> &'static [&'static str] {
    match m {
        Mutant::MissingHalf => &[
            "c2-loss",
            "c3-grad-logq-shared",
            "c3-grad-logz-shared",
            "c3-grad-v0-independent",
            "c4-window-loss",
            "c4-window-grad-logq",
            "c4-window-grad-boundary",
        ],
        Mutant::FlippedSign => &[
            "c1-residual",
            "c2-loss",
            "c3-grad-logq-shared",
            "c3-grad-logz-shared",
            "c3-grad-v0-independent",
            "c3-surrogate-grad-logq",
            "c4-window-residual",
            "c4-window-loss",
            "c4-window-grad-logq",
            "c4-window-grad-boundary",
        ],
        // β on the log-ratio in RTB and in SubTB (one definition): C4 fails too.
        Mutant::BetaOnRatio => &[
            "c1-residual",
            "c2-loss",
            "c3-grad-logq-shared",
            "c3-grad-logz-shared",
            "c3-grad-v0-independent",
            "c3-surrogate-grad-logq",
            "c4-window-residual",
            "c4-window-loss",
            "c4-window-grad-logq",
            "c4-window-grad-boundary",
        ],
        Mutant::AlphaNotSquared => &["c2-loss", "c3-grad-logq-shared", "c3-grad-logz-shared"],
    }
}

#[test]
fn every_mutant_is_caught() {
    for dtype in [Dtype::F32, Dtype::F64] {
        for m in Mutant::ALL {
            let r = run_checks(&GradcheckConfig {
                mutant: Some(m),
                ..cfg(1000, 30, dtype, 2.5, 9)
            })
            .unwrap();
            assert!(!r.all_hold, "{m} not caught");
            for c in &r.checks {
                let want_fail = affected(m).contains(&c.id.as_str());
                assert_eq!(
                    !c.holds, want_fail,
                    "{m} {dtype:?}: {} holds = {}",
                    c.id, c.holds
                );
            }
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtb-trustpcl"))
}

#[test]
fn cli_exit_codes_and_json() {
    let out = bin()
        .args(["gradcheck", "--batch", "500", "--steps", "16", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "dtype", "batch", "steps", "device", "all_hold", "checks", "seconds",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["device"], "cpu");
    assert_eq!(v["all_hold"], true);
    for c in v["checks"].as_array().unwrap() {
        for key in ["id", "holds", "max_error_over_bound", "max_abs_error"] {
            assert!(c.get(key).is_some(), "check missing {key}");
        }
    }
    let out = bin()
        .args([
            "gradcheck",
            "--batch",
            "500",
            "--steps",
            "16",
            "--mutant",
            "flipped-sign",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for bad in [
        vec!["--beta=-1"],
        vec!["--beta", "0"],
        vec!["--steps", "0"],
        vec!["--dtype", "f16"],
        vec!["--mutant", "nope"],
        vec!["--batch", "x"],
    ] {
        let out = bin().arg("gradcheck").args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// CPU against CUDA (`gradcheck --device cuda`): runs only where asked for, on a machine with
/// an NVIDIA GPU and a `--features cuda` build
/// (`cargo test --release --features cuda --test gradcheck -- --ignored cuda`). Everywhere else
/// it is listed as ignored ("not run: no GPU"), never passed on the stub's error.
#[test]
#[ignore = "not run: no GPU (needs an NVIDIA GPU and --features cuda; run with --ignored)"]
fn cuda_device_agrees_with_the_cpu() {
    let c = GradcheckConfig {
        device: Device::Cuda,
        ..cfg(2000, 40, Dtype::F32, 1.5, 5)
    };
    let r = run_checks(&c).unwrap_or_else(|e| panic!("not run: no usable GPU ({e})"));
    assert!(r.all_hold, "CUDA gradcheck fails: {:?}", r.checks);
}

/// Without the `cuda` feature, `--device cuda` is a clear input error (exit 2) naming the
/// rebuild, not a crash and not a pass.
#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let c = GradcheckConfig {
        device: Device::Cuda,
        ..cfg(20, 4, Dtype::F32, 1.5, 5)
    };
    let e = run_checks(&c).expect_err("the stub has no device");
    assert!(e.to_string().contains("--features cuda"), "{e}");
    let out = bin()
        .args(["gradcheck", "--device", "cuda"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features cuda"));
}

/// `bench --device cuda` without the feature: the same clear input error (exit 2).
#[cfg(not(feature = "cuda"))]
#[test]
fn bench_on_cuda_without_the_feature_is_a_clear_error() {
    let out = bin()
        .args(["bench", "--device", "cuda", "--batch", "64", "--steps", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features cuda"));
}

/// `bench --device cuda` on a GPU: every reference and every kernel in every form, with
/// positive finite timings, the byte counts of `device_kernel_bytes`, and no figure above the
/// card's peak (a rate over the peak means bytes or times are miscounted). Runs only where
/// asked for (`--ignored cuda`), like the tests above.
#[test]
#[ignore = "not run: no GPU (needs an NVIDIA GPU and --features cuda; run with --ignored)"]
fn cuda_bench_measures_every_kernel_under_the_peak() {
    use rtb_trustpcl::kernels::bench::{bench_batch, bench_kernel, device_kernel_bytes};
    use rtb_trustpcl::kernels::cuda::CudaBackend;
    use rtb_trustpcl::kernels::{GradForm, KernelId};
    let dev = CudaBackend::new(0).unwrap_or_else(|e| panic!("not run: no usable GPU ({e})"));
    let (b, t) = (1 << 16, 100);
    let r = rtb_trustpcl::kernels::bench::run_device_bench::<f32>(&dev, b, t, 5).unwrap();
    assert_eq!(r.measurements.len(), 4 + 3 * KernelId::ALL.len());
    let g = bench_batch::<f32>(b, t).unwrap();
    for m in &r.measurements {
        assert!(m.gbps.is_finite() && m.gbps > 0.0, "{m:?}");
        assert!(
            m.fraction_of_peak < 1.0,
            "{m:?} over the peak {}",
            r.peak_gbps
        );
    }
    for id in KernelId::ALL {
        let k = bench_kernel(&g, id);
        let row = |form: &str| {
            r.measurements
                .iter()
                .find(|m| m.name == id.name() && m.form == form)
                .unwrap()
        };
        let per = row("per-trajectory").bytes;
        let one = device_kernel_bytes(&g.batch, k.windows(), 1, GradForm::PerTrajectory);
        let two = device_kernel_bytes(&g.batch, k.windows(), 2, GradForm::PerTrajectory);
        assert!(per == one || per == two, "{} {per}", id.name());
        assert!(row("dense").bytes > per);
    }
    // A device copy of one batch timed with another batch's shape is refused, not read past.
    let other = bench_batch::<f32>(64, 7).unwrap();
    let up = dev.upload(&other.batch).unwrap();
    let e = dev
        .time_kernel(&up, &g.batch, &bench_kernel(&g, KernelId::Rtb), 1)
        .expect_err("shapes differ");
    assert!(e.to_string().contains("64 x 7"), "{e}");
}
