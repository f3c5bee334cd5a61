//! The prior and target mixtures of the paper's set-up (its `energies/` folder):
//! prior = 25 equally weighted Gaussians on `{−10,−5,0,5,10}²`, target = 9 of them with weights
//! `[4,10,4,5,10,5,4,15,4]/61`, both with covariance `0.3·I`. `log r = log target − log prior`,
//! β = 1, so the posterior is the target and `log Z = 0` exactly.
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Per-coordinate variance of every component.
pub const COMPONENT_VAR: f64 = 0.3;

/// The 9 target modes and their unnormalised weights (sum 61), in the paper's order: the
/// same set-up as the tabular study's, defined once there.
pub use crate::study::grid::{TARGET_MODES, TARGET_WEIGHTS};

/// The lattice coordinates of the prior modes.
pub const LATTICE: [f64; 5] = [-10.0, -5.0, 0.0, 5.0, 10.0];

/// A 2D Gaussian mixture with a shared isotropic variance.
#[derive(Debug, Clone)]
pub struct Mixture {
    /// Component means.
    pub means: Vec<[f64; 2]>,
    /// Normalised weights.
    pub weights: Vec<f64>,
    /// Per-coordinate variance.
    pub var: f64,
}

impl Mixture {
    /// The 25-mode prior mixture.
    pub fn prior25() -> Self {
        let mut means = Vec::with_capacity(25);
        for a in LATTICE {
            for b in LATTICE {
                means.push([a, b]);
            }
        }
        Self {
            weights: vec![1.0 / 25.0; 25],
            means,
            var: COMPONENT_VAR,
        }
    }

    /// The 9-mode target mixture.
    pub fn target9() -> Self {
        let total: f64 = TARGET_WEIGHTS.iter().sum();
        Self {
            means: TARGET_MODES.to_vec(),
            weights: TARGET_WEIGHTS.iter().map(|w| w / total).collect(),
            var: COMPONENT_VAR,
        }
    }

    /// `log density(x)`, by a stable log-sum-exp.
    pub fn log_prob(&self, x: [f64; 2]) -> f64 {
        let log_norm = -(2.0 * std::f64::consts::PI * self.var).ln();
        let terms: Vec<f64> = self
            .means
            .iter()
            .zip(&self.weights)
            .map(|(m, w)| {
                let d2 = (x[0] - m[0]).powi(2) + (x[1] - m[1]).powi(2);
                w.ln() + log_norm - 0.5 * d2 / self.var
            })
            .collect();
        log_sum_exp(&terms)
    }

    /// `n` exact samples (component by weight, then Gaussian noise).
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<[f64; 2]> {
        let sd = self.var.sqrt();
        (0..n)
            .map(|_| {
                let u: f64 = rng.gen();
                let mut acc = 0.0;
                let mut k = self.weights.len() - 1;
                for (i, w) in self.weights.iter().enumerate() {
                    acc += w;
                    if u < acc {
                        k = i;
                        break;
                    }
                }
                let m = self.means[k];
                [m[0] + sd * normal(rng), m[1] + sd * normal(rng)]
            })
            .collect()
    }
}

/// The experiment's log-reward `log r(x) = log target(x) − log prior(x)` (bounded above by
/// `log 25`: the prior contains every target component).
#[derive(Debug, Clone)]
pub struct Reward {
    /// The 25-mode prior density.
    pub prior: Mixture,
    /// The 9-mode target density.
    pub target: Mixture,
}

impl Default for Reward {
    fn default() -> Self {
        Self {
            prior: Mixture::prior25(),
            target: Mixture::target9(),
        }
    }
}

impl Reward {
    /// `log r(x)`.
    pub fn log_reward(&self, x: [f64; 2]) -> f64 {
        self.target.log_prob(x) - self.prior.log_prob(x)
    }
}

/// Index (0..25, row-major over [`LATTICE`]²) of the lattice point nearest to `x`.
pub fn nearest_lattice(x: [f64; 2]) -> usize {
    let idx = |v: f64| -> usize { ((v / 5.0).round().clamp(-2.0, 2.0) + 2.0) as usize };
    idx(x[0]) * 5 + idx(x[1])
}

/// The target's mass on each of the 25 lattice cells (its weights; zero off the 9 modes).
pub fn target_lattice_masses() -> [f64; 25] {
    let t = Mixture::target9();
    let mut out = [0.0; 25];
    for (m, w) in t.means.iter().zip(&t.weights) {
        out[nearest_lattice(*m)] += w;
    }
    out
}

/// A standard normal draw (Box–Muller; one value per call, deterministic given the stream).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let u1: f64 = rng.gen();
        if u1 > 0.0 {
            let u2: f64 = rng.gen();
            return (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        }
    }
}

/// `log Σ exp(xᵢ)`, stable; `−∞` for an empty slice.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}
