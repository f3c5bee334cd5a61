//! Chain rule from per-step `log q` gradients to tabular softmax logits.
//!
//! A tabular policy has one logit `θ_e` per edge `e = (s → s')`,
//! `q(e) = exp θ_e / Σ_{c ∈ children(s)} exp θ_c`, hence
//! `∂ log q(a|s) / ∂θ_b = 1[a = b] − q(b|s)` for `b` a child edge of `s` (0 otherwise). Given
//! `G[t, i] = ∂L/∂log q` at step `t` of trajectory `i`, which took edge `e[t, i]`:
//! `∂L/∂θ_b = A_b − q(b) · Σ_{c ∈ children(s(b))} A_c`, `A_e = Σ_{(t,i): e[t,i] = e} G[t, i]`.
//! That is `O(B·T + |E|)` (sparse: no `|E| × |E|` Jacobian). The scatter sums `A_e` use
//! compensated (Neumaier) summation.
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::error::BatchError;
use super::float::Float;

/// A tabular softmax policy: states `0..S`, state `s` owns edges `offsets[s]..offsets[s+1]`.
#[derive(Debug, Clone)]
pub struct TabularSoftmax<F: Float> {
    offsets: Vec<usize>,
    state_of: Vec<usize>,
    q: Vec<F>,
}

/// Neumaier's compensated accumulator.
#[derive(Debug, Clone, Copy, Default)]
struct Compensated<F: Float> {
    sum: F,
    comp: F,
}

impl<F: Float> Compensated<F> {
    #[inline]
    fn add(&mut self, x: F) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn merge(&mut self, o: Compensated<F>) {
        self.add(o.sum);
        self.comp += o.comp;
    }
    fn value(self) -> F {
        self.sum + self.comp
    }
}

impl<F: Float> TabularSoftmax<F> {
    /// Builds the policy from logits (one per edge), computing each state's softmax.
    pub fn from_logits(offsets: Vec<usize>, logits: &[F]) -> Result<Self, BatchError> {
        let state_of = check_offsets(&offsets, logits.len())?;
        if let Some((e, x)) = logits.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(BatchError::Softmax(format!("logit of edge {e} is {x}")));
        }
        let mut q = vec![F::ZERO; logits.len()];
        for s in 0..offsets.len() - 1 {
            let (lo, hi) = (offsets[s], offsets[s + 1]);
            let m = logits[lo..hi]
                .iter()
                .copied()
                .fold(logits[lo], |a, b| if b > a { b } else { a });
            let z: F = logits[lo..hi].iter().map(|&x| (x - m).exp()).sum();
            for e in lo..hi {
                q[e] = (logits[e] - m).exp() / z;
            }
        }
        Ok(Self {
            offsets,
            state_of,
            q,
        })
    }

    /// The probability `q(e)` of each edge.
    pub fn probabilities(&self) -> &[F] {
        &self.q
    }

    /// The state each edge leaves.
    pub fn state_of(&self) -> &[usize] {
        &self.state_of
    }

    /// `∂L/∂θ` from a dense `T × B` gradient `G` (only live steps `t < length` are read).
    /// `edges` is `T × B`: the edge taken at each step.
    pub fn logit_gradient(
        &self,
        edges: &DMatrix<u32>,
        lengths: &[usize],
        dense: &DMatrix<F>,
    ) -> Result<DVector<F>, BatchError> {
        if dense.shape() != edges.shape() {
            return Err(BatchError::Softmax(format!(
                "gradient shape {:?} differs from edges shape {:?}",
                dense.shape(),
                edges.shape()
            )));
        }
        let t = edges.nrows();
        let starts = vec![0; lengths.len()];
        self.accumulate(edges, &starts, lengths, |i, s| dense.as_slice()[i * t + s])
    }

    /// `∂L/∂θ` from the per-trajectory form: `G[t, i] = g_i` for `t` in `start_i..end_i`
    /// (the live steps `0..length`, or a window).
    pub fn logit_gradient_rows(
        &self,
        edges: &DMatrix<u32>,
        start: &[usize],
        end: &[usize],
        g: &[F],
    ) -> Result<DVector<F>, BatchError> {
        if g.len() != edges.ncols() {
            return Err(BatchError::Softmax(format!(
                "{} per-trajectory gradients for {} trajectories",
                g.len(),
                edges.ncols()
            )));
        }
        self.accumulate(edges, start, end, |i, _| g[i])
    }

    fn accumulate(
        &self,
        edges: &DMatrix<u32>,
        start: &[usize],
        end: &[usize],
        grad: impl Fn(usize, usize) -> F + Sync,
    ) -> Result<DVector<F>, BatchError> {
        let (t, b) = edges.shape();
        if start.len() != b || end.len() != b {
            return Err(BatchError::Softmax(format!(
                "{} / {} ranges for {b} trajectories",
                start.len(),
                end.len()
            )));
        }
        let ne = self.q.len();
        for i in 0..b {
            if start[i] > end[i] || end[i] > t {
                return Err(BatchError::Softmax(format!(
                    "trajectory {i}: steps {}..{} outside 0..={t}",
                    start[i], end[i]
                )));
            }
            for s in start[i]..end[i] {
                let e = edges[(s, i)] as usize;
                if e >= ne {
                    return Err(BatchError::Softmax(format!(
                        "trajectory {i}, step {s}: edge {e} outside 0..{ne}"
                    )));
                }
            }
        }
        let zero = || vec![Compensated::<F>::default(); ne];
        let acc = (0..b)
            .into_par_iter()
            .with_min_len(1024)
            .fold(zero, |mut acc, i| {
                for s in start[i]..end[i] {
                    acc[edges[(s, i)] as usize].add(grad(i, s));
                }
                acc
            })
            .reduce(zero, |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
                a
            });
        let a: Vec<F> = acc.into_iter().map(Compensated::value).collect();
        let mut out = DVector::from_element(ne, F::ZERO);
        for s in 0..self.offsets.len() - 1 {
            let (lo, hi) = (self.offsets[s], self.offsets[s + 1]);
            let total: F = super::sum::sum_slice(&a[lo..hi]);
            for e in lo..hi {
                out[e] = a[e] - self.q[e] * total;
            }
        }
        Ok(out)
    }
}

/// The chain rule of [`TabularSoftmax::logit_gradient_rows`] restricted to the states the
/// batch visits, for callers that keep logits rather than a [`TabularSoftmax`] (a training
/// loop): each visited state's softmax is computed from `logits` on the spot, so the cost is
/// `O(B·T·children + |E|)` (the `|E|` a `memset` of `out`) instead of a softmax over every
/// state. `edges` is `T × B`; `out` (one entry per edge) is overwritten: `A_b − q(b) Σ_c A_c`
/// at the visited states, 0 elsewhere. Equal to `logit_gradient_rows` to rounding (tested).
pub fn logit_gradient_visited<F: Float>(
    offsets: &[usize],
    logits: &[F],
    edges: &DMatrix<u32>,
    start: &[usize],
    end: &[usize],
    g: &[F],
    out: &mut [F],
) -> Result<(), BatchError> {
    check_offsets(offsets, logits.len())?;
    let (t, b) = edges.shape();
    if start.len() != b || end.len() != b || g.len() != b || out.len() != logits.len() {
        return Err(BatchError::Softmax(format!(
            "{} / {} ranges, {} gradients for {b} trajectories; {} outputs for {} edges",
            start.len(),
            end.len(),
            g.len(),
            out.len(),
            logits.len()
        )));
    }
    out.fill(F::ZERO);
    let mut visited = Vec::new();
    for i in 0..b {
        if start[i] > end[i] || end[i] > t {
            return Err(BatchError::Softmax(format!(
                "trajectory {i}: steps {}..{} outside 0..={t}",
                start[i], end[i]
            )));
        }
        for step in start[i]..end[i] {
            let e = edges[(step, i)] as usize;
            if e >= logits.len() {
                return Err(BatchError::Softmax(format!(
                    "trajectory {i}, step {step}: edge {e} outside 0..{}",
                    logits.len()
                )));
            }
            out[e] += g[i];
            visited.push(offsets.partition_point(|&o| o <= e) - 1);
        }
    }
    visited.sort_unstable();
    visited.dedup();
    for s in visited {
        let (lo, hi) = (offsets[s], offsets[s + 1]);
        let m = logits[lo..hi]
            .iter()
            .copied()
            .fold(logits[lo], |a, b| if b > a { b } else { a });
        let z: F = logits[lo..hi].iter().map(|&x| (x - m).exp()).sum();
        let total: F = super::sum::sum_slice(&out[lo..hi]);
        for e in lo..hi {
            out[e] = out[e] - (logits[e] - m).exp() / z * total;
        }
    }
    Ok(())
}

fn check_offsets(offsets: &[usize], edges: usize) -> Result<Vec<usize>, BatchError> {
    if offsets.len() < 2 || offsets[0] != 0 || *offsets.last().unwrap_or(&0) != edges {
        return Err(BatchError::Softmax(format!(
            "offsets must start at 0 and end at the edge count {edges}"
        )));
    }
    let mut state_of = vec![0; edges];
    for s in 0..offsets.len() - 1 {
        if offsets[s + 1] <= offsets[s] {
            return Err(BatchError::Softmax(format!(
                "state {s} has no edges (offsets {}..{})",
                offsets[s],
                offsets[s + 1]
            )));
        }
        state_of[offsets[s]..offsets[s + 1]].fill(s);
    }
    Ok(state_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three states with 2, 3, 1 children; two trajectories.
    fn setup() -> (Vec<usize>, Vec<f64>, DMatrix<u32>, Vec<usize>) {
        let offsets = vec![0, 2, 5, 6];
        let logits = vec![0.3, -0.2, 1.0, 0.0, -1.5, 0.7];
        // T = 3, B = 2; column i = trajectory i.
        let edges = DMatrix::from_column_slice(3, 2, &[0, 3, 5, 1, 2, 99]);
        (offsets, logits, edges, vec![3, 2])
    }

    fn loss(offsets: &[usize], logits: &[f64], edges: &DMatrix<u32>, g: &DMatrix<f64>) -> f64 {
        let pol = TabularSoftmax::from_logits(offsets.to_vec(), logits).unwrap();
        let mut l = 0.0;
        for (i, len) in [3usize, 2].into_iter().enumerate() {
            for s in 0..len {
                l += g[(s, i)] * pol.probabilities()[edges[(s, i)] as usize].ln();
            }
        }
        l
    }

    #[test]
    fn matches_finite_differences() {
        let (offsets, logits, edges, lengths) = setup();
        let g = DMatrix::from_column_slice(3, 2, &[0.5, -1.0, 2.0, 1.5, 0.25, f64::NAN]);
        let pol = TabularSoftmax::from_logits(offsets.clone(), &logits).unwrap();
        let got = pol.logit_gradient(&edges, &lengths, &g).unwrap();
        for b in 0..logits.len() {
            let h = 1e-6;
            let mut up = logits.clone();
            up[b] += h;
            let mut dn = logits.clone();
            dn[b] -= h;
            let fd =
                (loss(&offsets, &up, &edges, &g) - loss(&offsets, &dn, &edges, &g)) / (2.0 * h);
            assert!((got[b] - fd).abs() < 1e-8, "edge {b}: {} vs {fd}", got[b]);
        }
        // A single-child state's logit has zero gradient.
        assert_eq!(got[5], 0.0);
    }

    #[test]
    fn per_trajectory_form_matches_dense() {
        let (offsets, logits, edges, lengths) = setup();
        let gi = [0.75, -0.5];
        let dense = DMatrix::from_fn(3, 2, |s, i| if s < lengths[i] { gi[i] } else { 0.0 });
        let pol = TabularSoftmax::from_logits(offsets, &logits).unwrap();
        let a = pol.logit_gradient(&edges, &lengths, &dense).unwrap();
        let b = pol
            .logit_gradient_rows(&edges, &[0, 0], &lengths, &gi)
            .unwrap();
        assert!((a - b).amax() < 1e-15);
    }

    #[test]
    fn visited_form_matches_rows() {
        let (offsets, logits, edges, lengths) = setup();
        let gi = [0.75, -0.5];
        let pol = TabularSoftmax::from_logits(offsets.clone(), &logits).unwrap();
        let want = pol
            .logit_gradient_rows(&edges, &[0, 1], &lengths, &gi)
            .unwrap();
        let mut got = vec![7.0; logits.len()];
        logit_gradient_visited(&offsets, &logits, &edges, &[0, 1], &lengths, &gi, &mut got)
            .unwrap();
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        }
        // The padding edge 99 is read when the range says it is live.
        assert!(
            logit_gradient_visited(&offsets, &logits, &edges, &[0, 0], &[3, 3], &gi, &mut got)
                .is_err()
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (offsets, logits, edges, _) = setup();
        let pol = TabularSoftmax::from_logits(offsets, &logits).unwrap();
        // The padding edge 99 is read when the length says it is live.
        let g = DMatrix::from_element(3, 2, 1.0);
        assert!(matches!(
            pol.logit_gradient(&edges, &[3, 3], &g),
            Err(BatchError::Softmax(_))
        ));
        assert!(pol.logit_gradient(&edges, &[3, 4], &g).is_err());
        assert!(pol.logit_gradient_rows(&edges, &[0], &[1], &[1.0]).is_err());
        assert!(TabularSoftmax::from_logits(vec![0, 2], &[0.0]).is_err());
        assert!(TabularSoftmax::from_logits(vec![0, 0, 1], &[0.0]).is_err());
        assert!(TabularSoftmax::from_logits(vec![0, 1], &[f64::NAN]).is_err());
    }
}
