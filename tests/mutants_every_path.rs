//! One definition, one wrong objective, every path: each mutant, applied to the definitions,
//! makes the same claims fail in `verify` (exact), `gradcheck` (kernels at scale),
//! `gradcheck --spec` (Monte Carlo against exact expectations) and `classify` (a loss a user
//! wrote by hand implementing the mutant is named as that mutant). In particular C4 fails
//! under `beta-on-ratio` on every path (it used to hold in the kernels: SubTB ignored it).
mod common;

use common::{certificates, quick, spec_envs};
use rtb_trustpcl::agreement::gradcheck::{run_checks, Dtype, GradcheckConfig};
use rtb_trustpcl::agreement::montecarlo::{run_mc, McConfig};
use rtb_trustpcl::conventions::{classify, ExportedBatch, UserResults};
use rtb_trustpcl::mutant::Mutant;

/// The claim each mutant breaks on every path (at β ≠ 1), with its id per path.
fn shared_claim(m: Mutant) -> (&'static str, &'static [&'static str]) {
    match m {
        Mutant::MissingHalf => ("C2", &["c2-loss"]),
        Mutant::FlippedSign => ("C1", &["c1-residual"]),
        Mutant::BetaOnRatio => ("C4", &["c4-window-residual", "c4-window-loss"]),
        Mutant::AlphaNotSquared => ("C2", &["c2-loss"]),
    }
}

#[test]
fn verify_and_gradcheck_fail_the_same_claim() {
    let envs = spec_envs();
    let env = envs
        .iter()
        .find(|e| e.file.ends_with("diamond.toml"))
        .expect("diamond spec");
    for m in Mutant::ALL {
        let (claim, ids) = shared_claim(m);
        let certs = certificates(env, quick(Some(m)));
        let c = certs.iter().find(|c| c.claim == claim).expect("claim");
        assert_eq!(c.holds, Some(false), "verify: {m} leaves {claim} holding");
        let r = run_checks(&GradcheckConfig {
            batch: 400,
            steps: 12,
            dtype: Dtype::F64,
            beta: 1.5,
            seed: 2,
            mutant: Some(m),
            ..GradcheckConfig::default()
        })
        .unwrap();
        for id in ids {
            let check = r.checks.iter().find(|c| c.id == *id).expect("check id");
            assert!(!check.holds, "gradcheck: {m} leaves {id} holding");
        }
    }
    // The negative control's control: without a mutant every one of them holds.
    let certs = certificates(env, quick(None));
    assert!(certs.iter().all(|c| c.holds != Some(false)));
}

#[test]
fn monte_carlo_fails_under_each_mutant_that_changes_an_expectation() {
    for m in Mutant::ALL {
        let r = run_mc(&McConfig {
            spec: "spec/two-paths.toml".into(),
            samples: 100_000,
            seed: 3,
            mutant: Some(m),
            ..McConfig::default()
        })
        .unwrap();
        assert!(!r.report.all_hold, "{m} passes the Monte Carlo checks");
    }
}

/// A batch with β = 3/2 and lengths 1..=4.
fn batch() -> ExportedBatch {
    let (b, t) = (24, 4);
    let mut log_q = vec![0.0; b * t];
    let mut log_p = vec![0.0; b * t];
    let mut lengths = Vec::new();
    let mut log_r = Vec::new();
    for i in 0..b {
        let len = 1 + i % t;
        lengths.push(len);
        for k in 0..t {
            log_q[i * t + k] = -0.1 - 0.37 * ((i * 7 + k * 3) % 11) as f64 / 11.0;
            log_p[i * t + k] = -0.2 - 0.53 * ((i * 5 + k * 2) % 13) as f64 / 13.0;
        }
        log_r.push(-1.0 + 0.31 * (i % 9) as f64);
    }
    ExportedBatch {
        batch: b,
        steps: t,
        log_q,
        log_p,
        lengths,
        log_r,
        beta: 1.5,
        log_z: 0.4,
    }
}

/// A user's hand-written loss (per trajectory, batch-mean reduction for the gradients): the
/// residual of each trajectory and its derivative with respect to each log q and log Z.
struct HandWritten {
    per: Vec<f64>,
    grad_z: f64,
    grad_q: Vec<f64>,
}

/// What a user might write for each mutant, straight from its description (not from the
/// suite's code): `c(i)` is the per-trajectory residual, `w` the loss weight (½ or 1 and any
/// α factor), `dq` the residual's derivative w.r.t. each log q and `dz` w.r.t. log Z.
fn hand_written(b: &ExportedBatch, m: Mutant) -> HandWritten {
    let (beta, alpha) = (b.beta, 1.0 / b.beta);
    let t = b.steps;
    let sum = |v: &[f64], i: usize| (0..b.lengths[i]).map(|k| v[i * t + k]).sum::<f64>();
    let n = b.batch as f64;
    let residual = |i: usize| -> (f64, f64, f64, f64) {
        let (q, p, r) = (sum(&b.log_q, i), sum(&b.log_p, i), b.log_r[i]);
        let v0 = alpha * b.log_z;
        match m {
            // Trust-PCL without ½: C = −V0 + Σ(r_t − α log q + α log p), loss C².
            Mutant::MissingHalf => (-v0 + r - alpha * q + alpha * p, 1.0, -alpha, -alpha),
            // The KL penalty as a bonus: C' = −V0 + Σ(r_t + α log q − α log p), loss ½C'².
            Mutant::FlippedSign => (-v0 + r + alpha * q - alpha * p, 0.5, alpha, -alpha),
            // β on the log-ratio: δ' = log Z + β(Σ log q − Σ log p) − log r, loss ½δ'².
            Mutant::BetaOnRatio => (b.log_z + beta * (q - p) - r, 0.5, beta, 1.0),
            // RTB scaled by α where α² belongs: α·½δ².
            Mutant::AlphaNotSquared => (b.log_z + q - p - beta * r, 0.5 * alpha, 1.0, 1.0),
        }
    };
    let mut out = HandWritten {
        per: Vec::new(),
        grad_z: 0.0,
        grad_q: vec![0.0; b.batch * t],
    };
    for i in 0..b.batch {
        let (c, w, dq, dz) = residual(i);
        out.per.push(w * c * c);
        out.grad_z += 2.0 * w * c * dz / n;
        for k in 0..b.lengths[i] {
            out.grad_q[i * t + k] = 2.0 * w * c * dq / n;
        }
    }
    out
}

#[test]
fn classify_names_each_mutant() {
    let b = batch();
    for m in Mutant::ALL {
        let h = hand_written(&b, m);
        let user = UserResults {
            loss: h.per,
            grad_log_z: Some(h.grad_z),
            grad_log_q: Some(h.grad_q),
        };
        let c = classify(&b, &user, 1e-9).unwrap();
        let best = c.matches.first().unwrap_or_else(|| panic!("{m}: no match"));
        assert_eq!(best.mutant, Some(m), "{m}: named {}", best.name);
        assert!(best.distance <= 1e-9);
    }
}

#[test]
fn classify_names_the_right_objectives_as_no_mutant() {
    let b = batch();
    let t = b.steps;
    let n = b.batch as f64;
    // ½δ² with β on log r, mean reduction: RTB itself.
    let mut per = Vec::new();
    let mut grad_q = vec![0.0; b.batch * t];
    let mut grad_z = 0.0;
    for i in 0..b.batch {
        let q: f64 = (0..b.lengths[i]).map(|k| b.log_q[i * t + k]).sum();
        let p: f64 = (0..b.lengths[i]).map(|k| b.log_p[i * t + k]).sum();
        let d = b.log_z + q - p - b.beta * b.log_r[i];
        per.push(0.5 * d * d);
        grad_z += d / n;
        for k in 0..b.lengths[i] {
            grad_q[i * t + k] = d / n;
        }
    }
    let c = classify(
        &b,
        &UserResults {
            loss: per,
            grad_log_z: Some(grad_z),
            grad_log_q: Some(grad_q),
        },
        1e-9,
    )
    .unwrap();
    assert_eq!(c.matches[0].mutant, None, "{}", c.matches[0].name);
    assert_eq!(c.matches[0].alpha_power, 0);
    assert!(c.matches[0].half);
}
