//! The convention detector: synthetic user losses for each convention (written here
//! independently of the detector) are named correctly, through the library and through
//! `export-batch` → file → `classify` (npz and JSON); a non-matching loss is reported as such,
//! with its distance; bad input is an error.
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rtb_trustpcl::conventions::classify::{
    classify, ExportedBatch, Reduction, Residual, UserResults,
};
use rtb_trustpcl::conventions::npz;

/// A fresh directory per call (tests run in parallel).
fn fresh_dir() -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("rtb-classify-{}-{k}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn batch() -> ExportedBatch {
    let bin = env!("CARGO_BIN_EXE_rtb-trustpcl");
    let path = fresh_dir().join("batch.npz");
    let st = Command::new(bin)
        .args([
            "export-batch",
            "--out",
            path.to_str().unwrap(),
            "--seed",
            "4",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    npz::read(&path).unwrap().0
}

/// A user implementation: per-trajectory loss and the batch-reduced gradient per step.
struct User {
    half: bool,
    beta_on_ratio: bool,
    alpha_power: i32,
    vargrad: Option<f64>, // Some(sign of the mean): −1 VarGrad, +1 the '+mean' variant
    sum: bool,
}

fn run_user(b: &ExportedBatch, u: &User) -> (Vec<f64>, Vec<f64>, f64) {
    let t = b.steps;
    let alpha = 1.0 / b.beta;
    let sd: Vec<f64> = (0..b.batch)
        .map(|i| {
            (0..b.lengths[i])
                .map(|k| b.log_q[i * t + k] - b.log_p[i * t + k])
                .sum()
        })
        .collect();
    let s: Vec<f64> = (0..b.batch).map(|i| sd[i] - b.beta * b.log_r[i]).collect();
    let mean = s.iter().sum::<f64>() / b.batch as f64;
    let (res, w): (Vec<f64>, f64) = match (u.vargrad, u.beta_on_ratio) {
        (Some(sign), _) => (s.iter().map(|x| x + sign * mean).collect(), 1.0),
        (None, false) => (s.iter().map(|x| b.log_z + x).collect(), 1.0),
        (None, true) => (
            (0..b.batch)
                .map(|i| b.log_z + b.beta * sd[i] - b.log_r[i])
                .collect(),
            b.beta,
        ),
    };
    let c = alpha.powi(u.alpha_power) * if u.half { 0.5 } else { 1.0 };
    let loss: Vec<f64> = res.iter().map(|r| c * r * r).collect();
    let div = if u.sum { 1.0 } else { b.batch as f64 };
    let mut grad = vec![0.0; b.batch * t];
    for i in 0..b.batch {
        for k in 0..b.lengths[i] {
            grad[i * t + k] = 2.0 * c * res[i] * w / div;
        }
    }
    let gz = if u.vargrad.is_some() {
        0.0
    } else {
        res.iter().map(|r| 2.0 * c * r).sum::<f64>() / div
    };
    (loss, grad, gz)
}

#[test]
fn every_convention_is_named() {
    let b = batch();
    for half in [true, false] {
        for (beta_on_ratio, vargrad) in [
            (false, None),
            (true, None),
            (false, Some(-1.0)),
            (false, Some(1.0)),
        ] {
            for alpha_power in 0..3 {
                for sum in [false, true] {
                    let u = User {
                        half,
                        beta_on_ratio,
                        alpha_power,
                        vargrad,
                        sum,
                    };
                    let (loss, grad, gz) = run_user(&b, &u);
                    // Per-trajectory losses and the per-step gradient: everything is determined.
                    let r = UserResults {
                        loss: loss.clone(),
                        grad_log_z: Some(gz),
                        grad_log_q: Some(grad),
                    };
                    let c = classify(&b, &r, 1e-9).unwrap();
                    assert_eq!(
                        c.matches.len(),
                        1,
                        "{:?}",
                        c.matches.iter().map(|m| &m.name).collect::<Vec<_>>()
                    );
                    let m = &c.matches[0];
                    assert_eq!(m.half, half);
                    assert_eq!(m.alpha_power, alpha_power as u32);
                    assert_eq!(
                        m.reduction,
                        if sum { Reduction::Sum } else { Reduction::Mean }
                    );
                    let want = match (vargrad, beta_on_ratio) {
                        (Some(s), _) if s < 0.0 => Residual::VarGrad,
                        (Some(_), _) => Residual::VarGradPlusMean,
                        (None, false) => Residual::BetaOnLogR,
                        (None, true) => Residual::BetaOnLogRatio,
                    };
                    assert_eq!(m.residual, want);
                    // A reduced scalar loss alone also fixes the reduction.
                    let total: f64 =
                        loss.iter().sum::<f64>() / if sum { 1.0 } else { b.batch as f64 };
                    let r = UserResults {
                        loss: vec![total],
                        ..Default::default()
                    };
                    let c = classify(&b, &r, 1e-9).unwrap();
                    assert!(c.matches.iter().any(|m| m.residual == want
                        && m.half == half
                        && m.alpha_power == alpha_power as u32));
                }
            }
        }
    }
}

#[test]
fn a_foreign_loss_matches_nothing() {
    let b = batch();
    let (loss, _, _) = run_user(
        &b,
        &User {
            half: true,
            beta_on_ratio: false,
            alpha_power: 0,
            vargrad: None,
            sum: false,
        },
    );
    // δ³ instead of ½δ², and ½δ² off by 1 % : neither is any convention.
    let cubed: Vec<f64> = loss.iter().map(|l| (2.0 * l).powf(1.5)).collect();
    let c = classify(
        &b,
        &UserResults {
            loss: cubed,
            ..Default::default()
        },
        1e-4,
    )
    .unwrap();
    assert!(c.matches.is_empty());
    assert!(c.candidates[0].distance > 1e-2);
    let off: Vec<f64> = loss.iter().map(|l| 1.01 * l).collect();
    let c = classify(
        &b,
        &UserResults {
            loss: off,
            ..Default::default()
        },
        1e-4,
    )
    .unwrap();
    assert!(c.matches.is_empty());
    let best = &c.candidates[0];
    assert!((best.factor - 1.01).abs() < 1e-9, "factor {}", best.factor);
    assert!((best.distance - 0.01).abs() < 1e-6);
}

#[test]
fn bad_input_is_an_error() {
    let b = batch();
    assert!(classify(
        &b,
        &UserResults {
            loss: vec![1.0; 3],
            ..Default::default()
        },
        1e-4
    )
    .is_err());
    let r = UserResults {
        loss: vec![1.0],
        grad_log_q: Some(vec![0.0; 2]),
        ..Default::default()
    };
    assert!(classify(&b, &r, 1e-4).is_err());
    assert!(classify(
        &b,
        &UserResults {
            loss: vec![1.0],
            ..Default::default()
        },
        -1.0
    )
    .is_err());
    let mut bad = b.clone();
    bad.lengths[0] = b.steps + 1;
    assert!(classify(
        &bad,
        &UserResults {
            loss: vec![1.0],
            ..Default::default()
        },
        1e-4
    )
    .is_err());
}

#[test]
fn cli_round_trip_npz_and_json() {
    let bin = env!("CARGO_BIN_EXE_rtb-trustpcl");
    let b = batch();
    let dir = fresh_dir();
    let u = User {
        half: true,
        beta_on_ratio: false,
        alpha_power: 2,
        vargrad: None,
        sum: false,
    };
    let (loss, grad, gz) = run_user(&b, &u);
    for ext in ["npz", "json"] {
        let path = dir.join(format!("user.{ext}"));
        let r = UserResults {
            loss: loss.clone(),
            grad_log_z: Some(gz),
            grad_log_q: Some(grad.clone()),
        };
        npz::write(&path, &b, Some(&r)).unwrap();
        let (b2, r2) = npz::read(&path).unwrap();
        assert_eq!(b2, b);
        assert_eq!(r2.unwrap(), r);
        let out = Command::new(bin)
            .args(["classify", "--batch", path.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{ext}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["matches"][0]["alpha_power"], 2);
        assert_eq!(v["matches"][0]["residual"], "beta-on-log-r");
    }
    // No convention: exit 1; a batch without losses: exit 2.
    let path = dir.join("foreign.json");
    let r = UserResults {
        loss: loss.iter().map(|l| l * 3.0 + 1.0).collect(),
        ..Default::default()
    };
    npz::write(&path, &b, Some(&r)).unwrap();
    let st = Command::new(bin)
        .args(["classify", "--batch", path.to_str().unwrap()])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
    let bare = dir.join("bare.npz");
    npz::write(&bare, &b, None).unwrap();
    let st = Command::new(bin)
        .args(["classify", "--batch", bare.to_str().unwrap()])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2));
    let st = Command::new(bin)
        .args([
            "classify",
            "--batch",
            bare.to_str().unwrap(),
            "--results",
            path.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
}
