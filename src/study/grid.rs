//! The square, its cells, and the two Gaussian mixtures of the RTB paper's 2D example.
//!
//! The square `[−h, h]²` is cut into `n × n` cells of side `cell` (centres at
//! `−h + i · cell`, `i = 0..n`). A mixture is discretized by evaluating its density at the cell
//! centres and normalizing over the grid: that pmf is what the study calls "the discretized
//! mixture".
use super::StudyError;

/// Variance of every mixture component (covariance `0.3 · I`, as in the RTB paper).
pub const COMPONENT_VARIANCE: f64 = 0.3;

/// The 5×5 lattice `{−10, −5, 0, 5, 10}²`: the prior's 25 modes (equal weights).
pub fn prior_modes() -> Vec<[f64; 2]> {
    let axis = [-10.0, -5.0, 0.0, 5.0, 10.0];
    let mut out = Vec::with_capacity(25);
    for &x in &axis {
        for &y in &axis {
            out.push([x, y]);
        }
    }
    out
}

/// The target's 9 modes (RTB paper), in the order of [`TARGET_WEIGHTS`].
pub const TARGET_MODES: [[f64; 2]; 9] = [
    [-10.0, -5.0],
    [-5.0, -10.0],
    [-5.0, 0.0],
    [10.0, -5.0],
    [0.0, 0.0],
    [0.0, 5.0],
    [5.0, -5.0],
    [5.0, 0.0],
    [5.0, 10.0],
];

/// The target's unnormalized mode weights (RTB paper): they sum to 61.
pub const TARGET_WEIGHTS: [f64; 9] = [4.0, 10.0, 4.0, 5.0, 10.0, 5.0, 4.0, 15.0, 4.0];

/// An isotropic Gaussian mixture with normalized weights.
#[derive(Debug, Clone)]
pub struct Mixture {
    means: Vec<[f64; 2]>,
    log_weights: Vec<f64>,
    variance: f64,
}

impl Mixture {
    /// A mixture of `means` with (unnormalized, positive) `weights` and a common variance.
    pub fn new(means: Vec<[f64; 2]>, weights: &[f64], variance: f64) -> Result<Self, StudyError> {
        if means.is_empty() || means.len() != weights.len() {
            return Err(StudyError::Config(format!(
                "a mixture needs as many weights as means ({} vs {})",
                weights.len(),
                means.len()
            )));
        }
        if !(variance.is_finite() && variance > 0.0) {
            return Err(StudyError::Config(format!(
                "variance {variance} must be > 0"
            )));
        }
        if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(StudyError::Config("mixture weights must be > 0".into()));
        }
        let total: f64 = weights.iter().sum();
        Ok(Self {
            means,
            log_weights: weights.iter().map(|w| (w / total).ln()).collect(),
            variance,
        })
    }

    /// The prior: 25 equal modes on the 5×5 lattice.
    pub fn prior25() -> Self {
        Self::new(prior_modes(), &[1.0; 25], COMPONENT_VARIANCE).expect("valid constants")
    }

    /// The target: the RTB paper's 9 modes and weights.
    pub fn target9() -> Self {
        Self::new(TARGET_MODES.to_vec(), &TARGET_WEIGHTS, COMPONENT_VARIANCE)
            .expect("valid constants")
    }

    /// `log density(x) + log(2π σ²)`: the log-density without the Gaussian normalizer, which
    /// is the same for every mixture with this variance (so it cancels in density ratios).
    pub fn log_density(&self, x: [f64; 2]) -> f64 {
        let terms = self.means.iter().zip(&self.log_weights).map(|(m, lw)| {
            let d2 = (x[0] - m[0]).powi(2) + (x[1] - m[1]).powi(2);
            lw - d2 / (2.0 * self.variance)
        });
        log_sum_exp(terms)
    }

    /// The component means.
    pub fn means(&self) -> &[[f64; 2]] {
        &self.means
    }

    /// The normalized weights.
    pub fn weights(&self) -> Vec<f64> {
        self.log_weights.iter().map(|l| l.exp()).collect()
    }
}

/// `log Σ exp(x_i)` with the maximum shifted out (`−∞` for an empty input).
pub fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// The square and its cells.
#[derive(Debug, Clone)]
pub struct Grid {
    half_width: f64,
    cell: f64,
    side: usize,
}

impl Grid {
    /// The square `[−half_width, half_width]²` cut into cells of side `cell`; `2·half_width`
    /// must be a whole number of cells (to 1e-9).
    pub fn new(half_width: f64, cell: f64) -> Result<Self, StudyError> {
        if !(half_width.is_finite() && half_width > 0.0 && cell.is_finite() && cell > 0.0) {
            return Err(StudyError::Config(format!(
                "half-width {half_width} and cell size {cell} must be positive"
            )));
        }
        let k = 2.0 * half_width / cell;
        if (k - k.round()).abs() > 1e-9 || k.round() < 1.0 || k.round() > 4096.0 {
            return Err(StudyError::Config(format!(
                "2 × half-width {half_width} must be 1 to 4096 cells of size {cell}"
            )));
        }
        Ok(Self {
            half_width,
            cell,
            side: k.round() as usize + 1,
        })
    }

    /// Cells per side.
    pub fn side(&self) -> usize {
        self.side
    }
    /// Number of cells (`side²`).
    pub fn cells(&self) -> usize {
        self.side * self.side
    }
    /// Cell size.
    pub fn cell_size(&self) -> f64 {
        self.cell
    }
    /// Half-width of the square.
    pub fn half_width(&self) -> f64 {
        self.half_width
    }
    /// Cell index of row `i` (x axis), column `j` (y axis).
    pub fn index(&self, i: usize, j: usize) -> usize {
        i * self.side + j
    }
    /// `(i, j)` of a cell index.
    pub fn coords(&self, c: usize) -> (usize, usize) {
        (c / self.side, c % self.side)
    }
    /// Centre of a cell.
    pub fn center(&self, c: usize) -> [f64; 2] {
        let (i, j) = self.coords(c);
        [
            -self.half_width + i as f64 * self.cell,
            -self.half_width + j as f64 * self.cell,
        ]
    }

    /// The discretized mixture: density at the cell centres, normalized over the grid
    /// (as a pmf), with its log.
    pub fn discretize(&self, m: &Mixture) -> (Vec<f64>, Vec<f64>) {
        let logd: Vec<f64> = (0..self.cells())
            .map(|c| m.log_density(self.center(c)))
            .collect();
        let lz = log_sum_exp(logd.iter().copied());
        let log_pmf: Vec<f64> = logd.iter().map(|l| l - lz).collect();
        (log_pmf.iter().map(|l| l.exp()).collect(), log_pmf)
    }

    /// Basin of each cell: the index of the target mode (in [`TARGET_MODES`] order) whose
    /// lattice square contains it (nearest point of the 5×5 lattice, ties to the lower lattice
    /// index), or `None` where the nearest lattice point is one of the 16 prior-only modes.
    pub fn basins(&self) -> Vec<Option<usize>> {
        let lattice = prior_modes();
        (0..self.cells())
            .map(|c| {
                let x = self.center(c);
                let mut best = (f64::INFINITY, 0);
                for (k, m) in lattice.iter().enumerate() {
                    let d2 = (x[0] - m[0]).powi(2) + (x[1] - m[1]).powi(2);
                    if d2 < best.0 {
                        best = (d2, k);
                    }
                }
                let m = lattice[best.1];
                TARGET_MODES.iter().position(|t| *t == m)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_weights_and_modes_match_the_paper() {
        assert_eq!(TARGET_WEIGHTS.iter().sum::<f64>(), 61.0);
        let lattice = prior_modes();
        assert!(TARGET_MODES.iter().all(|m| lattice.contains(m)));
        let w = Mixture::target9().weights();
        assert!((w[7] - 15.0 / 61.0).abs() < 1e-15);
    }

    #[test]
    fn grid_geometry() {
        let g = Grid::new(12.0, 0.6).unwrap();
        assert_eq!(g.side(), 41);
        assert_eq!(g.center(0), [-12.0, -12.0]);
        let last = g.center(g.cells() - 1);
        assert!((last[0] - 12.0).abs() < 1e-12 && (last[1] - 12.0).abs() < 1e-12);
        assert!(Grid::new(12.0, 0.7).is_err());
        assert!(Grid::new(-1.0, 0.5).is_err());
        assert!(Grid::new(1.0, f64::NAN).is_err());
    }

    #[test]
    fn basins_are_lattice_squares() {
        let g = Grid::new(10.0, 2.5).unwrap();
        let b = g.basins();
        // The cell at (5, 0) is target mode 7; the cell at (10, 10) is a prior-only mode.
        let at = |x: f64, y: f64| {
            let i = ((x + 10.0) / 2.5).round() as usize;
            let j = ((y + 10.0) / 2.5).round() as usize;
            b[g.index(i, j)]
        };
        assert_eq!(at(5.0, 0.0), Some(7));
        assert_eq!(at(10.0, 10.0), None);
    }
}
