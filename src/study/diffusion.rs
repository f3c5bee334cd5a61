//! The diffusion-like layered DAG over `(time, cell)`, its exact prior and its reward.
//!
//! # Construction
//! A discrete noising walk on the grid: from cell `x`, draw an offset `d` uniformly from the
//! stencil `{−R..R}²` and move to `clamp(x + d)` (each coordinate clamped to the grid). Its
//! kernel `K(y|x)` factorizes over the two axes. Starting from the discretized 25-mode mixture
//! `m_0`, the noisy marginals are `m_k(y) = Σ_x m_{k−1}(x) K(y|x)`, `k = 1..K`.
//!
//! The DAG has a source, then `K` layers of `N` cells (noise levels `K, K−1, …, 1`), then the
//! `N` terminal cells (level 0). The source chooses the first noisy cell with prior `m_K(y)`;
//! a state `(k, y)` has one child `(k−1, x)` for every cell `x` of its stencil box (clamping
//! moves towards `x`, so every `x` with `K(y|x) > 0` lies in the box, and every cell of the box
//! has `K(y|x) > 0`), with the Bayes reverse probability
//! `p(x | y) = m_{k−1}(x) K(y|x) / m_k(y)`, normalized by its explicit sum over the box. By
//! induction the prior's marginal at level `k` is `m_k`, so its terminal marginal is the
//! discretized 25-mode mixture (to rounding).
//!
//! # Layout (dense, per layer)
//! Non-terminal states are numbered `0` (source) and `1 + (l − 1)·N + c` for layer `l = 1..K`
//! (noise level `K − l + 1`) and cell `c`; ids increase with the layer, so id order is a
//! topological order. Edges are stored CSR over these states (`offsets`), each with its child
//! cell (in the next layer; in the terminal layer after layer `K`) and its `log p`. Every
//! trajectory has exactly `K + 1` edges.
//!
//! As a [`Dag`] of the generic dynamic programme ([`crate::dag::flow`], the one DP of the
//! crate, which the study's metrics and exact expected gradients run), the terminal cells are
//! the nodes `states() + c` after the non-terminal states ([`DiffusionDag::terminal_node`]),
//! edges keep their ids, and the order is the id order.
use super::grid::{Grid, Mixture};
use super::StudyError;
use crate::dag::flow::Dag;

/// Largest number of edges a DAG may have (memory guard: a few hundred bytes per edge over a
/// training run).
pub const MAX_EDGES: usize = 20_000_000;

/// Parameters of the construction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DiffusionSpec {
    /// Half-width `h` of the square `[−h, h]²`.
    pub half_width: f64,
    /// Cell size.
    pub cell: f64,
    /// Number of denoising steps `K` (noise levels `1..K`); trajectories have `K + 1` edges.
    pub steps: usize,
    /// Stencil radius `R` (in cells) of one noising step.
    pub radius: usize,
}

impl DiffusionSpec {
    /// Refuses parameters that cannot build (cheap: nothing is allocated but the grid).
    pub fn validate(&self) -> Result<Grid, StudyError> {
        let spec = self;
        let grid = Grid::new(spec.half_width, spec.cell)?;
        if spec.steps == 0 || spec.steps > 256 {
            return Err(StudyError::Config(format!(
                "denoising steps {} must be in 1..=256",
                spec.steps
            )));
        }
        let side = grid.side();
        if spec.radius == 0 || spec.radius >= side {
            return Err(StudyError::Config(format!(
                "stencil radius {} must be in 1..{side} (cells per side)",
                spec.radius
            )));
        }
        let n = grid.cells();
        let box_side = (2 * spec.radius + 1) as u128;
        let bound = n as u128 * (1 + spec.steps as u128 * box_side * box_side);
        if bound > MAX_EDGES as u128 {
            return Err(StudyError::Config(format!(
                "the DAG would have up to {bound} edges (limit {MAX_EDGES}): coarser cells, \
                 fewer steps or a smaller stencil"
            )));
        }
        Ok(grid)
    }
}

/// The layered DAG with its prior and reward.
#[derive(Debug, Clone)]
pub struct DiffusionDag {
    spec: DiffusionSpec,
    grid: Grid,
    offsets: Vec<usize>,
    child: Vec<u32>,
    log_p: Vec<f64>,
    noisy: Vec<Vec<f64>>,
    prior_pmf: Vec<f64>,
    target_pmf: Vec<f64>,
    log_r: Vec<f64>,
    /// The generic DP's view: every node (non-terminal states, then terminal cells) in id
    /// order, the edge ids `0..E` (each state's out-edges are a slice of it), and each edge's
    /// tail and head node.
    order: Vec<usize>,
    edge_ids: Vec<usize>,
    tails: Vec<usize>,
    heads: Vec<usize>,
}

/// One-axis noising kernel `K1(y|x)`: the fraction of offsets `a ∈ −R..R` with
/// `clamp(x + a) = y`.
fn k1(x: usize, y: usize, r: usize, side: usize) -> f64 {
    let (x, y, r, last) = (x as i64, y as i64, r as i64, side as i64 - 1);
    let count = (-r..=r).filter(|a| (x + a).clamp(0, last) == y).count();
    count as f64 / (2 * r + 1) as f64
}

impl DiffusionDag {
    /// Builds the DAG, the noisy marginals, the prior by Bayes' rule, and `log r`.
    pub fn new(spec: DiffusionSpec) -> Result<Self, StudyError> {
        let grid = spec.validate()?;
        let n = grid.cells();
        let side = grid.side();
        let (prior_pmf, _) = grid.discretize(&Mixture::prior25());
        let (target_pmf, _) = grid.discretize(&Mixture::target9());
        let (p25, t9) = (Mixture::prior25(), Mixture::target9());
        let log_r: Vec<f64> = (0..n)
            .map(|c| {
                let x = grid.center(c);
                t9.log_density(x) - p25.log_density(x)
            })
            .collect();

        // Noisy marginals m_0 .. m_K.
        let r = spec.radius;
        let mut noisy = vec![prior_pmf.clone()];
        for _ in 0..spec.steps {
            let prev = noisy.last().expect("nonempty");
            let mut next = vec![0.0; n];
            for (x, &mx) in prev.iter().enumerate() {
                let (i, j) = grid.coords(x);
                for yi in box_axis(i, r, side) {
                    let ki = k1(i, yi, r, side);
                    for yj in box_axis(j, r, side) {
                        next[grid.index(yi, yj)] += mx * ki * k1(j, yj, r, side);
                    }
                }
            }
            noisy.push(next);
        }

        // Edges: the source, then layers 1..K.
        let states = 1 + spec.steps * n;
        let mut offsets = Vec::with_capacity(states + 1);
        let mut child = Vec::new();
        let mut log_p = Vec::new();
        offsets.push(0);
        let top = &noisy[spec.steps];
        let zt: f64 = top.iter().sum();
        for (c, m) in top.iter().enumerate() {
            child.push(c as u32);
            log_p.push((m / zt).ln());
        }
        offsets.push(child.len());
        let mut w = Vec::new();
        for layer in 1..=spec.steps {
            let level = spec.steps - layer + 1;
            let lower = &noisy[level - 1];
            for y in 0..n {
                let (i, j) = grid.coords(y);
                w.clear();
                for xi in box_axis(i, r, side) {
                    let ki = k1(xi, i, r, side);
                    for xj in box_axis(j, r, side) {
                        let x = grid.index(xi, xj);
                        w.push((x, lower[x] * ki * k1(xj, j, r, side)));
                    }
                }
                let z: f64 = w.iter().map(|(_, v)| v).sum();
                for &(x, v) in &w {
                    child.push(x as u32);
                    log_p.push((v / z).ln());
                }
                offsets.push(child.len());
            }
        }
        if let Some(e) = log_p.iter().position(|l| !l.is_finite()) {
            return Err(StudyError::Config(format!(
                "prior probability of edge {e} underflows: coarser cells or a wider square"
            )));
        }
        let mut tails = Vec::with_capacity(child.len());
        let mut heads = Vec::with_capacity(child.len());
        for s in 0..states {
            let layer = if s == 0 { 0 } else { 1 + (s - 1) / n };
            for &c in &child[offsets[s]..offsets[s + 1]] {
                tails.push(s);
                heads.push(if layer < spec.steps {
                    1 + layer * n + c as usize
                } else {
                    states + c as usize
                });
            }
        }
        Ok(Self {
            spec,
            grid,
            order: (0..states + n).collect(),
            edge_ids: (0..child.len()).collect(),
            tails,
            heads,
            offsets,
            child,
            log_p,
            noisy,
            prior_pmf,
            target_pmf,
            log_r,
        })
    }

    /// The construction's parameters.
    pub fn spec(&self) -> DiffusionSpec {
        self.spec
    }
    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }
    /// Number of cells `N` (terminal states).
    pub fn cells(&self) -> usize {
        self.grid.cells()
    }
    /// Number of denoising steps `K`.
    pub fn steps(&self) -> usize {
        self.spec.steps
    }
    /// Edges per trajectory, `K + 1`.
    pub fn trajectory_len(&self) -> usize {
        self.spec.steps + 1
    }
    /// Number of non-terminal states, `1 + K·N`.
    pub fn states(&self) -> usize {
        self.offsets.len() - 1
    }
    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.child.len()
    }
    /// CSR offsets: state `s` owns edges `offsets[s]..offsets[s + 1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }
    /// Child cell of each edge.
    pub fn child_cells(&self) -> &[u32] {
        &self.child
    }
    /// `log p` of each edge.
    pub fn log_p(&self) -> &[f64] {
        &self.log_p
    }
    /// The state reached after `layer` edges (`1..=K`) at `cell`, or `None` at the terminal
    /// layer `K + 1`.
    pub fn state(&self, layer: usize, cell: usize) -> Option<usize> {
        (layer >= 1 && layer <= self.spec.steps).then(|| 1 + (layer - 1) * self.cells() + cell)
    }
    /// The node of terminal cell `cell` in the [`Dag`] view (`states() + cell`).
    pub fn terminal_node(&self, cell: usize) -> usize {
        self.states() + cell
    }
    /// The layer (`0` for the source) of a non-terminal state.
    pub fn layer_of(&self, state: usize) -> usize {
        if state == 0 {
            0
        } else {
            1 + (state - 1) / self.cells()
        }
    }
    /// Noisy marginals `m_0, …, m_K` of the noising walk (`m_0` the discretized prior).
    pub fn noisy_marginals(&self) -> &[Vec<f64>] {
        &self.noisy
    }
    /// The discretized 25-mode mixture (pmf over cells).
    pub fn prior_pmf(&self) -> &[f64] {
        &self.prior_pmf
    }
    /// The discretized 9-mode mixture (pmf over cells).
    pub fn target_pmf(&self) -> &[f64] {
        &self.target_pmf
    }
    /// `log r(x) = log target9(x) − log prior25(x)` (density ratio at the cell centre).
    pub fn log_r(&self) -> &[f64] {
        &self.log_r
    }
}

/// Nodes `0..states()` are the non-terminal states, `states()..states() + cells()` the
/// terminal cells; an edge keeps its id.
impl Dag for DiffusionDag {
    fn state_count(&self) -> usize {
        self.order.len()
    }
    fn edge_count(&self) -> usize {
        self.child.len()
    }
    fn source(&self) -> usize {
        0
    }
    fn order(&self) -> &[usize] {
        &self.order
    }
    fn out_edges(&self, s: usize) -> &[usize] {
        match self.offsets.get(s + 1) {
            Some(&hi) => &self.edge_ids[self.offsets[s]..hi],
            None => &[],
        }
    }
    fn tail(&self, e: usize) -> usize {
        self.tails[e]
    }
    fn head(&self, e: usize) -> usize {
        self.heads[e]
    }
}

/// The cells `x − R ..= x + R` of one axis that lie in the grid.
fn box_axis(x: usize, r: usize, side: usize) -> std::ops::RangeInclusive<usize> {
    x.saturating_sub(r)..=(x + r).min(side - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> DiffusionDag {
        DiffusionDag::new(DiffusionSpec {
            half_width: 10.0,
            cell: 2.5,
            steps: 2,
            radius: 1,
        })
        .unwrap()
    }

    #[test]
    fn one_axis_kernel_is_a_distribution() {
        for side in [3, 5, 9] {
            for r in 1..side {
                for x in 0..side {
                    let s: f64 = (0..side).map(|y| k1(x, y, r, side)).sum();
                    assert!((s - 1.0).abs() < 1e-15);
                }
            }
        }
    }

    #[test]
    fn every_state_is_a_distribution() {
        let d = small();
        assert_eq!(d.states(), 1 + 2 * 81);
        for s in 0..d.states() {
            let (lo, hi) = (d.offsets()[s], d.offsets()[s + 1]);
            let total: f64 = d.log_p()[lo..hi].iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-13, "state {s}: {total}");
        }
        assert_eq!(d.layer_of(0), 0);
        assert_eq!(d.layer_of(d.state(2, 80).unwrap()), 2);
        assert_eq!(d.state(3, 0), None);
    }

    #[test]
    fn dag_view_matches_the_layout() {
        let d = small();
        assert_eq!(d.state_count(), d.states() + d.cells());
        assert_eq!(d.edge_count(), d.edges());
        for s in 0..d.states() {
            let next = d.layer_of(s) + 1;
            let out = d.out_edges(s);
            assert_eq!(
                out,
                (d.offsets()[s]..d.offsets()[s + 1]).collect::<Vec<_>>()
            );
            for &e in out {
                assert_eq!(d.tail(e), s);
                let c = d.child_cells()[e] as usize;
                let head = d.state(next, c).unwrap_or_else(|| d.terminal_node(c));
                assert_eq!(d.head(e), head);
                assert!(head > s, "id order is topological");
            }
        }
        for c in 0..d.cells() {
            assert!(d.out_edges(d.terminal_node(c)).is_empty());
        }
    }

    #[test]
    fn bad_specs_are_errors() {
        let ok = DiffusionSpec {
            half_width: 10.0,
            cell: 2.5,
            steps: 2,
            radius: 1,
        };
        for bad in [
            DiffusionSpec { steps: 0, ..ok },
            DiffusionSpec { radius: 0, ..ok },
            DiffusionSpec { radius: 9, ..ok },
            DiffusionSpec { cell: 0.0, ..ok },
            DiffusionSpec {
                cell: 0.01,
                steps: 100,
                radius: 5,
                ..ok
            },
        ] {
            assert!(DiffusionDag::new(bad).is_err(), "{bad:?}");
        }
    }
}
