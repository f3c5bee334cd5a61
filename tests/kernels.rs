//! The fused kernels against a naive per-trajectory reference, padding masking, and every
//! bad-input error. Each test body is written once and instantiated for f32 and f64.
use nalgebra::{DMatrix, DVector};
use rtb_trustpcl::agreement::bounds::{kernel_bounds, ParamErrors};
use rtb_trustpcl::kernels::generate::{generate, GenConfig};
use rtb_trustpcl::kernels::{
    all_kernels, evaluate, AllKernelsParams, BatchError, Float, GradForm, Kernel, KernelOutput,
    TrajectoryBatch, Windows,
};

/// The naive reference: every objective written per trajectory, straight from DESIGN §2, with
/// sequential sums in f64. Returns (residual, g, loss, scalar grad, start grad, end grad).
#[allow(clippy::type_complexity)]
fn naive<F: Float>(
    b: &TrajectoryBatch<F>,
    k: &Kernel<'_, F>,
) -> (Vec<f64>, Vec<f64>, f64, f64, Vec<f64>, Vec<f64>) {
    let beta = b.beta().to_f64();
    let alpha = 1.0 / beta;
    let n = b.live() as f64;
    let rows = b.batch();
    let live = |i: usize| b.lengths()[i] > 0;
    let lq = |i: usize, t: usize| b.row_log_q(i)[t].to_f64();
    let lp = |i: usize, t: usize| b.row_log_p(i)[t].to_f64();
    let lr = |i: usize| b.log_r()[i].to_f64();
    let (mut res, mut g, mut gs, mut ge) = (
        vec![0.0; rows],
        vec![0.0; rows],
        vec![0.0; rows],
        vec![0.0; rows],
    );
    let (mut loss, mut scalar) = (0.0, 0.0);
    let rl: Vec<f64> = (0..rows)
        .map(|i| (0..b.lengths()[i]).map(|t| lq(i, t)).sum())
        .collect();
    let kl: Vec<f64> = (0..rows)
        .map(|i| (0..b.lengths()[i]).map(|t| lq(i, t) - lp(i, t)).sum())
        .collect();
    match k {
        Kernel::Rtb { log_z } => {
            for i in (0..rows).filter(|&i| live(i)) {
                let d = log_z.to_f64() + kl[i] - beta * lr(i);
                res[i] = d;
                g[i] = d / n;
                loss += 0.5 * d * d / n;
                scalar += d / n;
            }
        }
        Kernel::Tpcl { v0 } | Kernel::TpclSurrogate { v0 } => {
            for i in (0..rows).filter(|&i| live(i)) {
                let len = b.lengths()[i];
                // Per-step RL terms: r_t − α log q + α log p, reward on the last step.
                let c = -v0.to_f64()
                    + (0..len)
                        .map(|t| {
                            let r = if t + 1 == len { lr(i) } else { 0.0 };
                            r - alpha * lq(i, t) + alpha * lp(i, t)
                        })
                        .sum::<f64>();
                res[i] = c;
                if let Kernel::Tpcl { .. } = k {
                    g[i] = -alpha * c / n;
                    loss += 0.5 * c * c / n;
                    scalar -= c / n;
                } else {
                    g[i] = -c / n;
                    loss += -c * rl[i] / n;
                }
            }
        }
        Kernel::TpclWindowed { windows } | Kernel::SubTb { windows } => {
            let tpcl = matches!(k, Kernel::TpclWindowed { .. });
            for i in (0..rows).filter(|&i| live(i)) {
                let (s, e, len) = (windows.start()[i], windows.end()[i], b.lengths()[i]);
                let vs = windows.value_start()[i].to_f64();
                let ve = windows.value_end()[i].to_f64();
                let terminal = e == len;
                if tpcl {
                    let c = -vs
                        + if terminal { 0.0 } else { ve }
                        + (s..e)
                            .map(|t| {
                                let r = if t + 1 == len { lr(i) } else { 0.0 };
                                r - alpha * lq(i, t) + alpha * lp(i, t)
                            })
                            .sum::<f64>();
                    res[i] = c;
                    g[i] = -alpha * c / n;
                    gs[i] = -c / n;
                    ge[i] = if terminal { 0.0 } else { c / n };
                    loss += 0.5 * c * c / n;
                } else {
                    let end = if terminal { beta * lr(i) } else { ve };
                    let d = vs + (s..e).map(|t| lq(i, t) - lp(i, t)).sum::<f64>() - end;
                    res[i] = d;
                    g[i] = d / n;
                    gs[i] = d / n;
                    ge[i] = if terminal { 0.0 } else { -d / n };
                    loss += 0.5 * d * d / n;
                }
            }
        }
        Kernel::ReinforceKl | Kernel::Flawed { .. } => {
            let flawed = matches!(k, Kernel::Flawed { .. });
            let kappa = match k {
                Kernel::Flawed { kappa } => kappa.to_f64(),
                _ => 0.0,
            };
            let reward: Vec<f64> = (0..rows)
                .map(|i| {
                    if flawed {
                        lr(i).exp()
                    } else {
                        lr(i) - alpha * kl[i]
                    }
                })
                .collect();
            let base = (0..rows)
                .filter(|&i| live(i))
                .map(|i| reward[i])
                .sum::<f64>()
                / n;
            for i in (0..rows).filter(|&i| live(i)) {
                let a = reward[i] - base;
                res[i] = a;
                g[i] = (-a + 2.0 * kappa * kl[i]) / n;
                loss += (-a * rl[i] + kappa * kl[i] * kl[i]) / n;
            }
        }
    }
    (res, g, loss, scalar, gs, ge)
}

fn check_close(what: &str, got: f64, want: f64, bound: f64) {
    // The kernel is within `bound` of the exact value; the f64 reference within an equal
    // allowance (same operations, u₆₄ ≤ u, depth ≤ T: far below the bound for f32).
    assert!(
        (got - want).abs() <= 2.0 * bound,
        "{what}: kernel {got} vs reference {want}, |diff| {} > 2·bound {}",
        (got - want).abs(),
        2.0 * bound
    );
}

fn compare<F: Float>(
    b: &TrajectoryBatch<F>,
    k: &Kernel<'_, F>,
    out: &KernelOutput<F>,
    pe: &ParamErrors,
) {
    let bd = kernel_bounds(b, k, None, out, pe);
    let (res, g, loss, scalar, gs, ge) = naive(b, k);
    let name = k.id().name();
    check_close(&format!("{name} loss"), out.loss.to_f64(), loss, bd.loss);
    check_close(
        &format!("{name} scalar"),
        out.grad_scalar.to_f64(),
        scalar,
        bd.grad_scalar,
    );
    for i in 0..b.batch() {
        check_close(
            &format!("{name} residual {i}"),
            out.residual[i].to_f64(),
            res[i],
            bd.residual[i],
        );
        check_close(&format!("{name} g {i}"), out.g[i].to_f64(), g[i], bd.g[i]);
        if let (Some(s), Some(e)) = (&out.grad_start, &out.grad_end) {
            check_close(
                &format!("{name} start {i}"),
                s[i].to_f64(),
                gs[i],
                bd.grad_start[i],
            );
            check_close(
                &format!("{name} end {i}"),
                e[i].to_f64(),
                ge[i],
                bd.grad_end[i],
            );
        }
    }
}

macro_rules! float_tests {
    ($($t:ident),*) => {$(
        mod $t {
            use super::*;

            fn gen(batch: usize, steps: usize, seed: u64, beta: f64) -> rtb_trustpcl::kernels::generate::Generated<$t> {
                generate::<$t>(&GenConfig { batch, steps, seed, beta, full_lengths: false }, None).unwrap()
            }

            #[test]
            fn kernels_match_naive_reference() {
                for (batch, steps, seed, beta) in [(200, 7, 1, 1.5), (150, 40, 2, 3.0), (40, 300, 3, 0.5), (5, 1, 4, 2.0)] {
                    let g = gen(batch, steps, seed, beta);
                    let b = &g.batch;
                    let pe = ParamErrors {
                        v0: 0.0,
                        value_start: vec![],
                        value_end: vec![],
                    };
                    for k in [
                        Kernel::Rtb { log_z: g.log_z },
                        Kernel::Tpcl { v0: g.v0 },
                        Kernel::TpclSurrogate { v0: g.v0 },
                        Kernel::TpclWindowed { windows: &g.windows_v },
                        Kernel::SubTb { windows: &g.windows_log_f },
                        Kernel::ReinforceKl,
                        Kernel::Flawed { kappa: 0.25 },
                    ] {
                        // The reference uses the same V as the kernel: no parameter error.
                        let out = evaluate(b, &k, GradForm::Dense).unwrap();
                        compare(b, &k, &out, &pe);
                        let per = evaluate(b, &k, GradForm::PerTrajectory).unwrap();
                        assert_eq!(per.g, out.g);
                        assert!(per.dense.is_none());
                    }
                }
            }

            #[test]
            fn padding_is_never_read_and_gets_zero_gradient() {
                let g = gen(64, 12, 7, 2.0);
                let b = &g.batch;
                // Same live entries, padding replaced by huge finite values instead of NaN.
                let fill = |m: &DMatrix<$t>| {
                    let mut m = m.clone();
                    for i in 0..b.batch() {
                        for t in b.lengths()[i]..b.steps() {
                            m[(t, i)] = -1e30 as $t;
                        }
                    }
                    m
                };
                let b2 = TrajectoryBatch::new(fill(b.log_q()), fill(b.log_p()), b.lengths().to_vec(), b.log_r().clone(), b.beta()).unwrap();
                for k in [Kernel::Rtb { log_z: g.log_z }, Kernel::Tpcl { v0: g.v0 }, Kernel::ReinforceKl] {
                    let x = evaluate(b, &k, GradForm::Dense).unwrap();
                    let y = evaluate(&b2, &k, GradForm::Dense).unwrap();
                    assert_eq!(x.loss.to_f64().to_bits(), y.loss.to_f64().to_bits());
                    assert_eq!(x.dense, y.dense);
                    let d = x.dense.unwrap();
                    for i in 0..b.batch() {
                        for t in 0..b.steps() {
                            let want = if t < b.lengths()[i] { x.g[i] } else { 0.0 };
                            assert_eq!(d[(t, i)], want);
                        }
                    }
                }
            }

            #[test]
            fn layouts_agree() {
                let g = gen(30, 9, 11, 1.5);
                let b = &g.batch;
                let bm_q = b.log_q().transpose();
                let bm_p = b.log_p().transpose();
                let b2 = TrajectoryBatch::from_batch_major(&bm_q, &bm_p, b.lengths().to_vec(), b.log_r().clone(), b.beta()).unwrap();
                let b3 = TrajectoryBatch::from_row_major(30, 9, b.log_q().as_slice().to_vec(), b.log_p().as_slice().to_vec(), b.lengths().to_vec(), b.log_r().as_slice().to_vec(), b.beta()).unwrap();
                let k = Kernel::Rtb { log_z: g.log_z };
                let x = evaluate(b, &k, GradForm::Dense).unwrap();
                for other in [&b2, &b3] {
                    let y = evaluate(other, &k, GradForm::Dense).unwrap();
                    assert_eq!(x.residual, y.residual);
                    assert_eq!(x.dense, y.dense);
                }
            }

            #[test]
            fn all_kernels_returns_each_kernel() {
                let g = gen(20, 5, 3, 2.0);
                let p = AllKernelsParams { log_z: g.log_z, v0: g.v0, kappa: 0.5, windows_v: Some(&g.windows_v), windows_log_f: Some(&g.windows_log_f) };
                let outs = all_kernels(&g.batch, &p, GradForm::PerTrajectory).unwrap();
                assert_eq!(outs.len(), 7);
                let p = AllKernelsParams { windows_v: None, windows_log_f: None, ..p };
                assert_eq!(all_kernels(&g.batch, &p, GradForm::PerTrajectory).unwrap().len(), 5);
            }

            fn small() -> (DMatrix<$t>, DMatrix<$t>, Vec<usize>, DVector<$t>) {
                let q = DMatrix::from_column_slice(2, 2, &[-0.5, -1.0, -0.25, <$t>::NAN]);
                let p = DMatrix::from_column_slice(2, 2, &[-1.0, -0.5, -2.0, <$t>::NAN]);
                (q, p, vec![2, 1], DVector::from_vec(vec![0.5, -1.0]))
            }

            #[test]
            fn bad_inputs_are_errors() {
                let (q, p, l, r) = small();
                assert!(TrajectoryBatch::new(q.clone(), p.clone(), l.clone(), r.clone(), 2.0).is_ok());
                // Shape mismatches.
                let p3 = DMatrix::from_element(3, 2, -1.0);
                assert!(matches!(TrajectoryBatch::new(q.clone(), p3, l.clone(), r.clone(), 2.0), Err(BatchError::ShapeMismatch { .. })));
                assert!(matches!(TrajectoryBatch::new(q.clone(), p.clone(), vec![1], r.clone(), 2.0), Err(BatchError::ShapeMismatch { .. })));
                assert!(matches!(TrajectoryBatch::new(q.clone(), p.clone(), l.clone(), DVector::from_vec(vec![0.0]), 2.0), Err(BatchError::ShapeMismatch { .. })));
                assert!(matches!(TrajectoryBatch::from_row_major(2, 2, vec![0.0; 3], vec![0.0; 4], l.clone(), vec![0.0; 2], 2.0), Err(BatchError::ShapeMismatch { .. })));
                // Lengths outside 0..=T.
                assert!(matches!(TrajectoryBatch::new(q.clone(), p.clone(), vec![3, 1], r.clone(), 2.0), Err(BatchError::LengthOutOfRange { row: 0, length: 3, steps: 2 })));
                assert!(matches!(TrajectoryBatch::<$t>::lengths_from_signed(&[1, -1], 2), Err(BatchError::LengthOutOfRange { row: 1, length: -1, .. })));
                // NaN / ±Inf in live entries (the NaN in row 1's padding is fine).
                for bad in [<$t>::NAN, <$t>::INFINITY, <$t>::NEG_INFINITY] {
                    let mut q2 = q.clone();
                    q2[(1, 0)] = bad;
                    assert!(matches!(TrajectoryBatch::new(q2, p.clone(), l.clone(), r.clone(), 2.0), Err(BatchError::NonFinite { what: "log_q", row: 0, step: Some(1), .. })));
                    let mut p2 = p.clone();
                    p2[(0, 1)] = bad;
                    assert!(matches!(TrajectoryBatch::new(q.clone(), p2, l.clone(), r.clone(), 2.0), Err(BatchError::NonFinite { what: "log_p", row: 1, .. })));
                    let mut r2 = r.clone();
                    r2[1] = bad;
                    assert!(matches!(TrajectoryBatch::new(q.clone(), p.clone(), l.clone(), r2, 2.0), Err(BatchError::NonFinite { what: "log_r", .. })));
                }
                // β ≤ 0 or non-finite.
                for beta in [0.0, -1.0, <$t>::NAN, <$t>::INFINITY] {
                    assert!(matches!(TrajectoryBatch::new(q.clone(), p.clone(), l.clone(), r.clone(), beta), Err(BatchError::InvalidBeta(_))));
                }
                // Positive log-probabilities beyond rounding; within rounding accepted.
                let mut q2 = q.clone();
                q2[(0, 0)] = 1e-3;
                assert!(matches!(TrajectoryBatch::new(q2, p.clone(), l.clone(), r.clone(), 2.0), Err(BatchError::PositiveLogProbability { what: "log_q", .. })));
                let mut p2 = p.clone();
                p2[(0, 1)] = 0.5;
                assert!(matches!(TrajectoryBatch::new(q.clone(), p2, l.clone(), r.clone(), 2.0), Err(BatchError::PositiveLogProbability { what: "log_p", .. })));
                let mut q3 = q.clone();
                q3[(0, 0)] = <$t>::EPSILON;
                assert!(TrajectoryBatch::new(q3, p.clone(), l.clone(), r.clone(), 2.0).is_ok());
                // No live trajectory.
                assert!(matches!(TrajectoryBatch::new(q.clone(), p.clone(), vec![0, 0], r.clone(), 2.0), Err(BatchError::NoLiveTrajectory)));
                // Non-finite scalars, bad windows, overflow.
                let b = TrajectoryBatch::new(q.clone(), p.clone(), l.clone(), r.clone(), 2.0).unwrap();
                assert!(matches!(evaluate(&b, &Kernel::Rtb { log_z: <$t>::NAN }, GradForm::Dense), Err(BatchError::NonFiniteScalar { .. })));
                assert!(matches!(evaluate(&b, &Kernel::Tpcl { v0: <$t>::INFINITY }, GradForm::Dense), Err(BatchError::NonFiniteScalar { .. })));
                let v = DVector::from_vec(vec![0.0, 0.0]);
                assert!(matches!(Windows::new(&b, vec![1, 0], vec![1, 1], v.clone(), v.clone()), Err(BatchError::WindowOutOfRange { row: 0, .. })));
                assert!(matches!(Windows::new(&b, vec![0, 0], vec![2, 2], v.clone(), v.clone()), Err(BatchError::WindowOutOfRange { row: 1, .. })));
                assert!(matches!(Windows::new(&b, vec![0], vec![2], v.clone(), v.clone()), Err(BatchError::ShapeMismatch { .. })));
                assert!(matches!(Windows::new(&b, vec![0, 0], vec![1, 1], DVector::from_vec(vec![<$t>::NAN, 0.0]), v.clone()), Err(BatchError::NonFinite { .. })));
                let huge = TrajectoryBatch::new(q.clone(), p.clone(), l.clone(), DVector::from_vec(vec![800.0, 0.0]), 2.0).unwrap();
                assert!(matches!(evaluate(&huge, &Kernel::Flawed { kappa: 1.0 }, GradForm::Dense), Err(BatchError::Overflow { .. })));
                let mut buf = DMatrix::from_element(3, 3, 0.0);
                assert!(matches!(rtb_trustpcl::kernels::evaluate_into(&b, &Kernel::ReinforceKl, None, Some(&mut buf)), Err(BatchError::ShapeMismatch { .. })));
            }
        }
    )*};
}

float_tests!(f32, f64);

#[test]
fn empty_rows_do_not_count_in_the_mean() {
    let q = DMatrix::from_column_slice(1, 2, &[-1.0f64, f64::NAN]);
    let p = DMatrix::from_column_slice(1, 2, &[-0.5, f64::NAN]);
    let b = TrajectoryBatch::new(
        q,
        p,
        vec![1, 0],
        DVector::from_vec(vec![0.0, f64::NAN]),
        1.0,
    )
    .unwrap();
    let out = evaluate(&b, &Kernel::Rtb { log_z: 0.0 }, GradForm::Dense).unwrap();
    // δ = −1 + 0.5 = −0.5 on the one live row: loss ½·0.25, not halved by the empty row.
    assert_eq!(out.loss, 0.125);
    assert_eq!(out.g.as_slice(), &[-0.5, 0.0]);
    assert_eq!(b.live(), 1);
}
