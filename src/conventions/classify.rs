//! The convention detector: given a batch that `export-batch` wrote and the per-trajectory
//! losses (optionally the gradients w.r.t. `log Z` and per-step `log q`) that a third-party
//! implementation computed on it, name the convention they match (docs/classify.md).
//!
//! Candidates (`CONVENTIONS.md` rows 1, 3, 4, 5, 10, and Trust-PCL's α power): a residual
//! - `δ = log Z + Σ(log q − log p) − β log r` (β on `log r`),
//! - `δ' = log Z + β Σ(log q − log p) − log r` (β on the log-ratio),
//! - VarGrad `s_i − mean_j s_j` with `s = Σ(log q − log p) − β log r` (`log Z := −mean s`;
//!   detached or not, the gradients are identical),
//! - `s_i + mean_j s_j` (the `+mean` centring seen in one script: a different objective),
//!
//! times `α^k`, `k ∈ {0, 1, 2}` (`k = 2` is Trust-PCL with the shared scalar
//! `V(s0) = α log Z`, `C = −α δ`; `k = 1` a Trust-PCL scaled by α instead of α²), with or
//! without `½`, and a reduction (per trajectory, batch mean, batch sum); and Trust-PCL with
//! its KL penalty's sign flipped. A candidate matches when every quantity the user gave is
//! within a relative distance `tol` of it.
//!
//! Every candidate's numbers come from the objectives' one definition, run by the one
//! evaluator in f64 with dual-number gradients: the Trust-PCL candidates from Trust-PCL's own
//! definition with `V(s0) = α log Z` (never as a multiple of RTB), the others from RTB's,
//! VarGrad's and `+mean`'s. A candidate that is one of the suite's mutants (a definition
//! changed by [`Definitions::mutated`], or the `α` factor where α² is predicted) is named as
//! that mutant.
use serde::Serialize;

use crate::mutant::Mutant;
use crate::objectives::{
    evaluate_with_gradients, Definitions, Family, Objective, Reduction as ObjReduction, Trajectory,
};

/// A batch as exported (row-major `[B, T]`, padding past each length).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedBatch {
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub steps: usize,
    /// Per-step `log q`, row-major `[B, T]`.
    pub log_q: Vec<f64>,
    /// Per-step `log p`, row-major `[B, T]`.
    pub log_p: Vec<f64>,
    /// Lengths (`1..=T`).
    pub lengths: Vec<usize>,
    /// `log r(x)` per trajectory.
    pub log_r: Vec<f64>,
    /// β.
    pub beta: f64,
    /// `log Z`.
    pub log_z: f64,
}

/// Why a batch or a user's results cannot be classified.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClassifyError {
    /// `B` or `T` is zero.
    #[error("batch and steps must be at least 1, got B = {batch}, T = {steps}")]
    Empty {
        /// `B`.
        batch: usize,
        /// `T`.
        steps: usize,
    },
    /// `B × T` does not fit in memory's index type.
    #[error("B × T = {batch} × {steps} overflows")]
    Overflow {
        /// `B`.
        batch: usize,
        /// `T`.
        steps: usize,
    },
    /// An array has the wrong number of entries.
    #[error("{array} has {found} entries, expected {expected}")]
    Entries {
        /// The array.
        array: &'static str,
        /// Its length.
        found: usize,
        /// What the batch implies.
        expected: String,
    },
    /// A trajectory's length is outside `1..=T`.
    #[error("trajectory {row}: length {length} outside 1..={steps}")]
    Length {
        /// The trajectory.
        row: usize,
        /// Its length.
        length: usize,
        /// `T`.
        steps: usize,
    },
    /// A scalar that must be finite and positive (β, the tolerance) is not.
    #[error("{what} must be finite and > 0, got {value}")]
    NotPositive {
        /// `beta` or `the tolerance`.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// The one evaluator refused a candidate's objective (not one the detector builds).
    #[error(transparent)]
    Eval(#[from] crate::objectives::eval::EvalError),
    /// A NaN or an infinity.
    #[error(
        "{array}: non-finite value {value} at {place} (a NaN or infinity cannot be classified)"
    )]
    NonFinite {
        /// The array.
        array: &'static str,
        /// Where (`entry 3`, `trajectory 2, step 5`).
        place: String,
        /// The value.
        value: f64,
    },
}

impl ExportedBatch {
    /// Checks shapes and values.
    pub fn validate(&self) -> Result<(), ClassifyError> {
        let (b, t) = (self.batch, self.steps);
        if b == 0 || t == 0 {
            return Err(ClassifyError::Empty { batch: b, steps: t });
        }
        let bt = b
            .checked_mul(t)
            .ok_or(ClassifyError::Overflow { batch: b, steps: t })?;
        for (what, n, want) in [
            ("log_q", self.log_q.len(), bt),
            ("log_p", self.log_p.len(), bt),
            ("lengths", self.lengths.len(), b),
            ("log_r", self.log_r.len(), b),
        ] {
            if n != want {
                return Err(ClassifyError::Entries {
                    array: what,
                    found: n,
                    expected: want.to_string(),
                });
            }
        }
        if let Some(i) = self.lengths.iter().position(|&l| l == 0 || l > t) {
            return Err(ClassifyError::Length {
                row: i,
                length: self.lengths[i],
                steps: t,
            });
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(ClassifyError::NotPositive {
                what: "beta",
                value: self.beta,
            });
        }
        if !self.log_z.is_finite() {
            return Err(ClassifyError::NonFinite {
                array: "log_z",
                place: "the scalar".into(),
                value: self.log_z,
            });
        }
        if let Some((i, &x)) = self.log_r.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(ClassifyError::NonFinite {
                array: "log_r",
                place: format!("trajectory {i}"),
                value: x,
            });
        }
        for i in 0..b {
            for k in 0..self.lengths[i] {
                for (array, x) in [
                    ("log_q", self.log_q[i * t + k]),
                    ("log_p", self.log_p[i * t + k]),
                ] {
                    if !x.is_finite() {
                        return Err(ClassifyError::NonFinite {
                            array,
                            place: format!("trajectory {i}, step {k}"),
                            value: x,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `Σ_t (log q − log p)` per trajectory.
    pub fn log_ratio(&self) -> Vec<f64> {
        let t = self.steps;
        (0..self.batch)
            .map(|i| {
                (0..self.lengths[i])
                    .map(|k| self.log_q[i * t + k] - self.log_p[i * t + k])
                    .sum()
            })
            .collect()
    }
}

/// What the user's implementation produced on the batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserResults {
    /// Per-trajectory losses (`B` values) or the reduced loss (one value).
    pub loss: Vec<f64>,
    /// `∂(reduced loss)/∂log Z`, if available.
    pub grad_log_z: Option<f64>,
    /// `∂(reduced loss)/∂log q`, row-major `[B, T]`, if available.
    pub grad_log_q: Option<Vec<f64>>,
}

/// The residual a convention squares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Residual {
    /// `log Z + Σ(log q − log p) − β log r`.
    BetaOnLogR,
    /// `log Z + β Σ(log q − log p) − log r`.
    BetaOnLogRatio,
    /// VarGrad: `s_i − mean s` (no `log Z`).
    VarGrad,
    /// `s_i + mean s` (not VarGrad: a different objective).
    VarGradPlusMean,
    /// Trust-PCL's consistency with the KL penalty's sign flipped (`V(s0) = α log Z`).
    FlippedKlSign,
}

/// Batch reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// Batch mean.
    Mean,
    /// Batch sum.
    Sum,
}

/// One candidate convention and how far the user's numbers are from it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Human-readable name.
    pub name: String,
    /// `½` in front of the square.
    pub half: bool,
    /// The residual.
    pub residual: Residual,
    /// `k` in the factor `α^k`.
    pub alpha_power: u32,
    /// The reduction (the one that fits best when the user's data cannot tell).
    pub reduction: Reduction,
    /// Whether the user's data can tell the reduction (a reduced loss or a gradient given).
    pub reduction_determined: bool,
    /// Largest relative distance over the quantities given (0 = identical).
    pub distance: f64,
    /// Least-squares factor `f` with user loss ≈ `f` × candidate loss.
    pub factor: f64,
    /// The suite's mutant this candidate is, if it is one.
    pub mutant: Option<Mutant>,
}

/// The classification.
#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    /// The tolerance on the relative distance.
    pub tolerance: f64,
    /// Candidates within the tolerance, best first.
    pub matches: Vec<Candidate>,
    /// Every candidate, best first.
    pub candidates: Vec<Candidate>,
}

fn name(res: Residual, k: u32, half: bool) -> String {
    let h = if half { "½·" } else { "" };
    let a = match k {
        0 => "",
        1 => "α·",
        _ => "α²·",
    };
    let what = match (res, k) {
        (Residual::BetaOnLogR, 0) => "RTB (β on log r)",
        (Residual::BetaOnLogR, 2) => "Trust-PCL, shared scalar V(s0) = α log Z (= α²·RTB)",
        (Residual::BetaOnLogR, _) => "Trust-PCL scaled by α instead of α²",
        (Residual::BetaOnLogRatio, 0) => "RTB with β on the log-ratio",
        (Residual::BetaOnLogRatio, _) => "β on the log-ratio, scaled by a power of α",
        (Residual::VarGrad, 0) => "VarGrad (log Z := −batch mean; detached or not)",
        (Residual::VarGrad, _) => "VarGrad scaled by a power of α",
        (Residual::VarGradPlusMean, _) => "'+mean' centring (not VarGrad)",
        (Residual::FlippedKlSign, _) => "Trust-PCL with the KL penalty's sign flipped",
    };
    let sym = match res {
        Residual::BetaOnLogR => "δ²",
        Residual::BetaOnLogRatio => "δ'²",
        Residual::VarGrad => "(s − s̄)²",
        Residual::VarGradPlusMean => "(s + s̄)²",
        Residual::FlippedKlSign => "C'²",
    };
    format!("{h}{a}{sym}: {what}")
}

/// Relative distance `max |a − b| / max |b|` (0 when equal, ∞ on a NaN).
fn distance(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    if a.iter().chain(b).any(|x| x.is_nan()) {
        f64::INFINITY
    } else if diff == 0.0 {
        0.0
    } else if scale == 0.0 {
        f64::INFINITY
    } else {
        diff / scale
    }
}

/// Classifies the user's results on the batch.
pub fn classify(
    batch: &ExportedBatch,
    user: &UserResults,
    tol: f64,
) -> Result<Classification, ClassifyError> {
    batch.validate()?;
    let (b, t) = (batch.batch, batch.steps);
    if user.loss.len() != b && user.loss.len() != 1 {
        return Err(ClassifyError::Entries {
            array: "loss",
            found: user.loss.len(),
            expected: format!("{b} (per trajectory) or 1 (reduced)"),
        });
    }
    if let Some(g) = &user.grad_log_q {
        if Some(g.len()) != b.checked_mul(t) {
            return Err(ClassifyError::Entries {
                array: "grad_log_q",
                found: g.len(),
                expected: format!("B × T = {b} × {t}"),
            });
        }
    }
    if !(tol.is_finite() && tol > 0.0) {
        return Err(ClassifyError::NotPositive {
            what: "the tolerance",
            value: tol,
        });
    }
    for (what, values) in [
        ("loss", Some(&user.loss[..])),
        (
            "grad_log_z",
            user.grad_log_z.as_ref().map(std::slice::from_ref),
        ),
        ("grad_log_q", user.grad_log_q.as_deref()),
    ] {
        if let Some((j, x)) = values
            .into_iter()
            .flatten()
            .enumerate()
            .find(|(_, x)| !x.is_finite())
        {
            return Err(ClassifyError::NonFinite {
                array: what,
                place: format!("entry {j}"),
                value: *x,
            });
        }
    }
    let defs = Definitions::from_f64(batch.beta).ok_or(ClassifyError::NotPositive {
        what: "beta",
        value: batch.beta,
    })?;
    let alpha = 1.0 / batch.beta;
    let trajectories: Vec<Trajectory<f64>> = (0..b)
        .map(|i| Trajectory {
            log_q: batch.log_q[i * t..i * t + batch.lengths[i]].to_vec(),
            log_p: batch.log_p[i * t..i * t + batch.lengths[i]].to_vec(),
            log_r: batch.log_r[i],
            reward: batch.log_r[i].exp(),
            window: None,
        })
        .collect();
    let flipped = defs.clone().mutated(Some(Mutant::FlippedSign));
    let mutant_of = |o: &Objective, k: u32| -> Option<Mutant> {
        let right = match o.family {
            Family::Rtb => &defs.rtb,
            Family::TrustPcl => &defs.tpcl,
            _ => return None,
        };
        Mutant::ALL.into_iter().find(|&m| {
            let wrong = defs.clone().mutated(Some(m));
            let changed = match o.family {
                Family::Rtb => &wrong.rtb,
                _ => &wrong.tpcl,
            };
            let expected_power = if o.family == Family::Rtb { 0 } else { 2 };
            (changed != right && changed == o && k == expected_power)
                || (m == Mutant::AlphaNotSquared
                    && o == right
                    && o.family == Family::Rtb
                    && k == wrong.factors.shared_scalar.0
                    && k != defs.factors.shared_scalar.0)
        })
    };
    let mut cands = Vec::new();
    let mut grid: Vec<(Residual, u32)> = Vec::new();
    for res in [
        Residual::BetaOnLogR,
        Residual::BetaOnLogRatio,
        Residual::VarGrad,
        Residual::VarGradPlusMean,
    ] {
        grid.extend((0..3u32).map(|k| (res, k)));
    }
    grid.push((Residual::FlippedKlSign, 2));
    for (res, k) in grid {
        for half in [true, false] {
            for red in [Reduction::Mean, Reduction::Sum] {
                // The candidate's objective and scalar: Trust-PCL (α² with the shared scalar)
                // from its own definition, the rest from theirs times α^k.
                let (mut objective, scalar, chain, scale) = match (res, k) {
                    (Residual::BetaOnLogR, 2) => {
                        (defs.tpcl.clone(), alpha * batch.log_z, alpha, 1.0)
                    }
                    (Residual::FlippedKlSign, _) => {
                        (flipped.tpcl.clone(), alpha * batch.log_z, alpha, 1.0)
                    }
                    (Residual::BetaOnLogR, _) => {
                        (defs.rtb.clone(), batch.log_z, 1.0, alpha.powi(k as i32))
                    }
                    (Residual::BetaOnLogRatio, _) => (
                        defs.clone().mutated(Some(Mutant::BetaOnRatio)).rtb,
                        batch.log_z,
                        1.0,
                        alpha.powi(k as i32),
                    ),
                    (Residual::VarGrad, _) => {
                        (defs.vargrad.clone(), 0.0, 0.0, alpha.powi(k as i32))
                    }
                    (Residual::VarGradPlusMean, _) => {
                        let mut o = defs.vargrad.clone();
                        o.family = Family::PlusMean;
                        (o, 0.0, 0.0, alpha.powi(k as i32))
                    }
                };
                objective.half = half;
                objective.reduction = match red {
                    Reduction::Mean => ObjReduction::Mean,
                    Reduction::Sum => ObjReduction::Sum,
                };
                let grads =
                    evaluate_with_gradients(&objective, &defs.beta, &trajectories, &scalar)?;
                let per: Vec<f64> = grads.evaluation.losses.iter().map(|x| scale * x).collect();
                let mut dist = 0.0f64;
                let mut determined = false;
                let factor;
                if user.loss.len() == b {
                    dist = dist.max(distance(&user.loss, &per));
                    let (num, den) = user
                        .loss
                        .iter()
                        .zip(&per)
                        .fold((0.0, 0.0), |(n, dd), (u, c)| (n + u * c, dd + c * c));
                    factor = if den > 0.0 { num / den } else { f64::NAN };
                } else {
                    determined = true;
                    let total = scale * grads.evaluation.loss;
                    dist = dist.max(distance(&user.loss, &[total]));
                    factor = user.loss[0] / total;
                }
                if let Some(gz_user) = user.grad_log_z {
                    determined = true;
                    // ∂/∂log Z through the scalar (V(s0) = α log Z: the chain factor α).
                    dist = dist.max(distance(&[gz_user], &[scale * chain * grads.scalar]));
                }
                if let Some(gq) = &user.grad_log_q {
                    determined = true;
                    let want: Vec<f64> = (0..b * t)
                        .map(|j| {
                            let (i, s) = (j / t, j % t);
                            if s < batch.lengths[i] {
                                scale * grads.log_q[i][s]
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    dist = dist.max(distance(gq, &want));
                }
                cands.push(Candidate {
                    name: name(res, k, half),
                    half,
                    residual: res,
                    alpha_power: k,
                    reduction: red,
                    reduction_determined: determined,
                    distance: dist,
                    factor,
                    mutant: mutant_of(&objective, k),
                });
            }
        }
    }
    // Where the reduction is not determined, keep one entry per convention (mean).
    cands.retain(|c| c.reduction_determined || c.reduction == Reduction::Mean);
    cands.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let matches = cands
        .iter()
        .filter(|c| c.distance <= tol)
        .cloned()
        .collect();
    Ok(Classification {
        tolerance: tol,
        matches,
        candidates: cands,
    })
}
