//! One dynamic programme over a DAG, generic over the number type: forward flows
//! (occupancies), backward values (`F*`, soft values, expected costs-to-go), prefix sums and
//! the softmax policy gradient. Every user runs this one module: the claims in exact
//! rationals with polynomial or log-form values, `expect/` for the Monte Carlo references, and
//! any float caller (the study's metrics) in `f64`.
//!
//! Two traits describe the numbers. A [`Weight`] is a field element that multiplies (edge
//! probabilities, occupancies): any type with `0`, `1`, `+=`, `·` and `−` by reference, so
//! exact rationals and `f64` qualify without further code. A [`Value`] is what the programme
//! accumulates, a vector over the weights (a number, a log-form, a polynomial): it needs only
//! `0`, a constant and the fused `self += w·x` (done in place, without cloning `x`).
//!
//! The graph is any [`Dag`]: the validated [`Environment`](super::Environment), or a
//! [`CsrDag`] built from an edge list by any caller.
//!
//! ```
//! use rtb_trustpcl::dag::flow::{backward, forward_flows, policy_gradient, CsrDag};
//! // s0 -> a -> x1, s0 -> x1, a -> x2 (states 0, 1, 2, 3).
//! let dag = CsrDag::new(4, 0, &[(0, 1), (0, 2), (1, 2), (1, 3)]).unwrap();
//! let q: Vec<f64> = vec![0.5, 0.5, 0.6, 0.4];
//! let flows = forward_flows(&dag, &q);
//! assert!((flows.state[2] + flows.state[3] - 1.0).abs() < 1e-12); // the terminal marginal
//! // Expected reward with a cost 1.0 on entering x1 and 3.0 on entering x2.
//! let cost = vec![0.0, 1.0, 1.0, 3.0];
//! let values = backward(&dag, &q, &cost, |_| 0.0);
//! assert!((values.value[0] - (0.5 * (0.6 * 1.0 + 0.4 * 3.0) + 0.5)).abs() < 1e-12);
//! // Its softmax policy gradient, one component per edge (zero-sum at every state).
//! let grad = policy_gradient(&dag, &q, &flows, &values, None);
//! assert!((grad[2] + grad[3]).abs() < 1e-12);
//! ```
use num_traits::{One, Zero};
use std::ops::{AddAssign, Mul, Sub};

/// A finite DAG with one source, edges numbered `0..edge_count`, and a topological order.
pub trait Dag {
    /// Number of states.
    fn state_count(&self) -> usize;
    /// Number of edges.
    fn edge_count(&self) -> usize;
    /// The source state.
    fn source(&self) -> usize;
    /// Every state, each after all its parents (the source first).
    fn order(&self) -> &[usize];
    /// The edges leaving `s` (none at a terminal).
    fn out_edges(&self, s: usize) -> &[usize];
    /// The state edge `e` starts from.
    fn tail(&self, e: usize) -> usize;
    /// The state edge `e` enters.
    fn head(&self, e: usize) -> usize;
}

impl Dag for super::Environment {
    fn state_count(&self) -> usize {
        self.states.len()
    }
    fn edge_count(&self) -> usize {
        self.edges.len()
    }
    fn source(&self) -> usize {
        self.source
    }
    fn order(&self) -> &[usize] {
        &self.topo
    }
    fn out_edges(&self, s: usize) -> &[usize] {
        &self.out_edges[s]
    }
    fn tail(&self, e: usize) -> usize {
        self.edges[e].from
    }
    fn head(&self, e: usize) -> usize {
        self.edges[e].to
    }
}

/// Why an edge list is not a DAG [`CsrDag::new`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The source is not a state.
    #[error("source {state} is not one of the {states} states")]
    Source {
        /// The source given.
        state: usize,
        /// The number of states.
        states: usize,
    },
    /// An edge leaves the states.
    #[error("edge {edge} ({from} -> {to}) leaves the {states} states")]
    Edge {
        /// The edge's index.
        edge: usize,
        /// Its tail.
        from: usize,
        /// Its head.
        to: usize,
        /// The number of states.
        states: usize,
    },
    /// The edges contain a cycle.
    #[error("the edges contain a cycle")]
    Cycle,
}

/// A DAG given by an edge list (for callers with their own graph type).
#[derive(Debug, Clone)]
pub struct CsrDag {
    source: usize,
    order: Vec<usize>,
    out: Vec<Vec<usize>>,
    ends: Vec<(usize, usize)>,
}

impl CsrDag {
    /// Builds the DAG of `states` states and the edges `(from, to)`; an error names an edge
    /// out of range or a cycle.
    pub fn new(states: usize, source: usize, edges: &[(usize, usize)]) -> Result<Self, GraphError> {
        if source >= states {
            return Err(GraphError::Source {
                state: source,
                states,
            });
        }
        let mut out = vec![Vec::new(); states];
        let mut indegree = vec![0usize; states];
        for (e, &(from, to)) in edges.iter().enumerate() {
            if from >= states || to >= states {
                return Err(GraphError::Edge {
                    edge: e,
                    from,
                    to,
                    states,
                });
            }
            out[from].push(e);
            indegree[to] += 1;
        }
        let mut order = Vec::with_capacity(states);
        let mut ready: Vec<usize> = (0..states).filter(|&s| indegree[s] == 0).collect();
        while let Some(s) = ready.pop() {
            order.push(s);
            for &e in &out[s] {
                let to = edges[e].1;
                indegree[to] -= 1;
                if indegree[to] == 0 {
                    ready.push(to);
                }
            }
        }
        if order.len() != states {
            return Err(GraphError::Cycle);
        }
        Ok(Self {
            source,
            order,
            out,
            ends: edges.to_vec(),
        })
    }
}

impl Dag for CsrDag {
    fn state_count(&self) -> usize {
        self.out.len()
    }
    fn edge_count(&self) -> usize {
        self.ends.len()
    }
    fn source(&self) -> usize {
        self.source
    }
    fn order(&self) -> &[usize] {
        &self.order
    }
    fn out_edges(&self, s: usize) -> &[usize] {
        &self.out[s]
    }
    fn tail(&self, e: usize) -> usize {
        self.ends[e].0
    }
    fn head(&self, e: usize) -> usize {
        self.ends[e].1
    }
}

/// A field element the programme multiplies by: edge probabilities, occupancies.
pub trait Weight:
    Clone
    + Zero
    + One
    + for<'a> AddAssign<&'a Self>
    + for<'a> Mul<&'a Self, Output = Self>
    + for<'a> Sub<&'a Self, Output = Self>
{
}

impl<T> Weight for T where
    T: Clone
        + Zero
        + One
        + for<'a> AddAssign<&'a T>
        + for<'a> Mul<&'a T, Output = T>
        + for<'a> Sub<&'a T, Output = T>
{
}

/// What the programme accumulates: a vector over the weights `W`.
pub trait Value<W>: Clone {
    /// The zero vector.
    fn zero_value() -> Self;
    /// The constant `w` (a vector along the unit).
    fn constant_value(w: &W) -> Self;
    /// `self += w·x`, in place.
    fn add_scaled(&mut self, x: &Self, w: &W);
    /// `a + w·b` as a new value: by default a clone of `a` and [`Value::add_scaled`]; a type
    /// may fuse the two (the exact polynomials do: one product per term instead of a copy and
    /// a product), and must then return the value the default would, in the same form.
    fn sum_scaled(a: &Self, b: &Self, w: &W) -> Self {
        let mut out = a.clone();
        out.add_scaled(b, w);
        out
    }
}

impl<W: Weight> Value<W> for W {
    fn zero_value() -> Self {
        W::zero()
    }
    fn constant_value(w: &W) -> Self {
        w.clone()
    }
    fn add_scaled(&mut self, x: &Self, w: &W) {
        *self += &(x.clone() * w);
    }
}

impl Value<crate::exact::Rational> for crate::exact::Poly {
    fn zero_value() -> Self {
        Self::zero()
    }
    fn constant_value(w: &crate::exact::Rational) -> Self {
        Self::constant(w.clone())
    }
    fn add_scaled(&mut self, x: &Self, w: &crate::exact::Rational) {
        crate::exact::Poly::add_scaled(self, x, w);
    }
}

impl Value<crate::exact::Rational> for crate::exact::FracPoly {
    fn zero_value() -> Self {
        Self::zero()
    }
    fn constant_value(w: &crate::exact::Rational) -> Self {
        Self::constant(w)
    }
    fn add_scaled(&mut self, x: &Self, w: &crate::exact::Rational) {
        crate::exact::FracPoly::add_scaled(self, x, w);
    }
    fn sum_scaled(a: &Self, b: &Self, w: &crate::exact::Rational) -> Self {
        // `a.clone()` has `a`'s numerators and denominator, as `0 + 1·a` does.
        Self::combination(a, &num_traits::One::one(), b, w)
    }
}

impl Value<crate::exact::Rational> for crate::exact::LogForm {
    fn zero_value() -> Self {
        Self::zero()
    }
    fn constant_value(w: &crate::exact::Rational) -> Self {
        Self::constant(w.clone())
    }
    fn add_scaled(&mut self, x: &Self, w: &crate::exact::Rational) {
        crate::exact::LogForm::add_scaled(self, x, w);
    }
}

fn minus_one<W: Weight>() -> W {
    W::zero() - &W::one()
}

/// Forward flows of a policy: the occupancy of every state and the flow through every edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Flows<W> {
    /// `occ(s0) = 1`, `occ(s') = Σ_{e into s'} occ(s)·q(e)`; on terminals, the terminal
    /// marginal.
    pub state: Vec<W>,
    /// `occ(s)·q(e)` per edge.
    pub edge: Vec<W>,
}

/// How often, in states, the `*_until` passes ask their `proceed` whether to go on.
pub const CHECK_EVERY: usize = 32;

/// True when the pass may visit its `i`-th state: `proceed` is asked every [`CHECK_EVERY`]
/// states (a budget's time and memory checkpoint, say).
fn may_continue(i: usize, proceed: &dyn Fn() -> bool) -> bool {
    !i.is_multiple_of(CHECK_EVERY) || proceed()
}

/// The forward pass: occupancies and edge flows under `policy` (one weight per edge).
pub fn forward_flows<G: Dag + ?Sized, W: Weight>(g: &G, policy: &[W]) -> Flows<W> {
    forward_flows_until(g, policy, &|| true)
}

/// [`forward_flows`], stopped early when `proceed` returns false (asked every
/// [`CHECK_EVERY`] states): the states not reached keep zero, so a stopped pass's values are
/// partial and the caller must discard them (as a run stopped by its budget does).
pub fn forward_flows_until<G: Dag + ?Sized, W: Weight>(
    g: &G,
    policy: &[W],
    proceed: &dyn Fn() -> bool,
) -> Flows<W> {
    let mut state = vec![W::zero(); g.state_count()];
    let mut edge = vec![W::zero(); g.edge_count()];
    state[g.source()] = W::one();
    for (i, &s) in g.order().iter().enumerate() {
        if !may_continue(i, proceed) {
            break;
        }
        for &e in g.out_edges(s) {
            edge[e] = state[s].clone() * &policy[e];
            state[g.head(e)] += &edge[e];
        }
    }
    Flows { state, edge }
}

/// Backward values: `value(s) = Σ_{e from s} w(e)·action(e)` with
/// `action(e) = cost(e) + value(head e)`, and `value(x) = terminal(x)` at terminals.
#[derive(Debug, Clone, PartialEq)]
pub struct Backward<V> {
    /// Per state.
    pub value: Vec<V>,
    /// Per edge: `cost(e) + value(head e)`.
    pub action: Vec<V>,
}

/// The backward pass. With `w = p`, zero costs and `terminal(x) = r(x)^β` it is the optimum's
/// flow `F*`; with `w = q` and per-edge costs it is the expected cost-to-go (soft value).
pub fn backward<G: Dag + ?Sized, W: Weight, V: Value<W>>(
    g: &G,
    weight: &[W],
    cost: &[V],
    terminal: impl Fn(usize) -> V,
) -> Backward<V> {
    backward_until(g, weight, cost, terminal, &|| true)
}

/// [`backward`], stopped early when `proceed` returns false (see [`forward_flows_until`]).
pub fn backward_until<G: Dag + ?Sized, W: Weight, V: Value<W>>(
    g: &G,
    weight: &[W],
    cost: &[V],
    terminal: impl Fn(usize) -> V,
    proceed: &dyn Fn() -> bool,
) -> Backward<V> {
    let mut value = vec![V::zero_value(); g.state_count()];
    let mut action = vec![V::zero_value(); g.edge_count()];
    let one = W::one();
    for (i, &s) in g.order().iter().rev().enumerate() {
        if !may_continue(i, proceed) {
            break;
        }
        let out = g.out_edges(s);
        if out.is_empty() {
            value[s] = terminal(s);
            continue;
        }
        let mut v = V::zero_value();
        for &e in out {
            let a = V::sum_scaled(&cost[e], &value[g.head(e)], &one);
            v.add_scaled(&a, &weight[e]);
            action[e] = a;
        }
        value[s] = v;
    }
    Backward { value, action }
}

/// The prefix sums `P(s) = E[(start + Σ_{prefix to s} cost)·1[s ∈ τ]]`:
/// `P(s0) = start`, `P(s') = Σ_{e into s'} q(e)·P(s) + flow(e)·cost(e)`.
pub fn prefix_sums<G: Dag + ?Sized, W: Weight, V: Value<W>>(
    g: &G,
    policy: &[W],
    flows: &Flows<W>,
    start: V,
    cost: &[V],
) -> Vec<V> {
    prefix_sums_until(g, policy, flows, start, cost, &|| true)
}

/// [`prefix_sums`], stopped early when `proceed` returns false (see [`forward_flows_until`]).
pub fn prefix_sums_until<G: Dag + ?Sized, W: Weight, V: Value<W>>(
    g: &G,
    policy: &[W],
    flows: &Flows<W>,
    start: V,
    cost: &[V],
    proceed: &dyn Fn() -> bool,
) -> Vec<V> {
    let mut prefix = vec![V::zero_value(); g.state_count()];
    prefix[g.source()] = start;
    for (i, &s) in g.order().iter().enumerate() {
        if !may_continue(i, proceed) {
            break;
        }
        // `P(s)` is read while its children are written; it is moved out for the loop (a DAG
        // has no edge from `s` to itself) instead of being cloned per edge.
        let carried = std::mem::replace(&mut prefix[s], V::zero_value());
        for &e in g.out_edges(s) {
            let to = g.head(e);
            prefix[to].add_scaled(&carried, &policy[e]);
            prefix[to].add_scaled(&cost[e], &flows.edge[e]);
        }
        prefix[s] = carried;
    }
    prefix
}

/// The softmax policy gradient of `F(q) = Σ_s occ(s)·Σ_e q(e)·cost(e)` (the source's backward
/// value), one component per edge `b` from `s`, for tabular logits
/// (`∂q(e)/∂θ_b = q(e)·(1[e = b] − q(b))`):
/// `∂F/∂θ_b = occ(s)·q(b)·(action(b) − value(s)) + occ(s)·q(b)·(w_b − Σ_e q(e)·w_e)`,
/// where `w_e = ∂cost(e)/∂log q(e)` is the optional score weight (cost depending on `q`).
pub fn policy_gradient<G: Dag + ?Sized, W: Weight, V: Value<W>>(
    g: &G,
    policy: &[W],
    flows: &Flows<W>,
    values: &Backward<V>,
    score: Option<&[W]>,
) -> Vec<V> {
    let neg = minus_one::<W>();
    // `Σ_e q(e)·w_e` once per state, not once per edge.
    let mean: Option<Vec<W>> = score.map(|w| {
        (0..g.state_count())
            .map(|s| {
                g.out_edges(s)
                    .iter()
                    .fold(W::zero(), |acc, &e| acc + policy[e].clone() * &w[e])
            })
            .collect()
    });
    (0..g.edge_count())
        .map(|b| {
            let s = g.tail(b);
            let mut difference = values.action[b].clone();
            difference.add_scaled(&values.value[s], &neg);
            let mut out = V::zero_value();
            out.add_scaled(&difference, &flows.edge[b]);
            if let (Some(w), Some(mean)) = (score, &mean) {
                let centred = w[b].clone() - &mean[s];
                out.add_scaled(&V::constant_value(&centred), &flows.edge[b]);
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Rational;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    #[test]
    fn a_pass_stops_when_told_and_only_then() {
        // A chain of 3·CHECK_EVERY states: the forward pass asks at states 0, 32, 64.
        let n = 3 * CHECK_EVERY;
        let edges: Vec<(usize, usize)> = (0..n - 1).map(|s| (s, s + 1)).collect();
        let dag = CsrDag::new(n, 0, &edges).unwrap();
        let policy = vec![q(1, 1); n - 1];
        let asked = std::cell::Cell::new(0);
        let stop_at_second = || {
            asked.set(asked.get() + 1);
            asked.get() < 2
        };
        let flows = forward_flows_until(&dag, &policy, &stop_at_second);
        assert_eq!(asked.get(), 2);
        // States before the second question are reached, the rest keep zero.
        assert_eq!(flows.state[CHECK_EVERY], q(1, 1));
        assert_eq!(flows.state[CHECK_EVERY + 1], q(0, 1));
        // Negative control: a pass that is never stopped reaches every state.
        let full = forward_flows_until(&dag, &policy, &|| true);
        assert_eq!(full.state[n - 1], q(1, 1));
        assert_eq!(full, forward_flows(&dag, &policy));
        let cost = vec![q(1, 1); n - 1];
        let stopped = backward_until(&dag, &policy, &cost, |_| q(0, 1), &|| false);
        assert_eq!(stopped.value[0], q(0, 1));
        let complete = backward(&dag, &policy, &cost, |_| q(0, 1));
        assert_eq!(complete.value[0], q((n - 1) as i64, 1));
        let prefix = prefix_sums_until(&dag, &policy, &full, q(0, 1), &cost, &|| false);
        assert_eq!(prefix[n - 1], q(0, 1));
    }

    proptest::proptest! {
        #[test]
        fn fused_sums_of_exact_polynomials_equal_a_clone_and_an_addition(
            a in proptest::collection::vec((0usize..4, -30i64..30, 1i64..20), 0..5),
            b in proptest::collection::vec((0usize..4, -30i64..30, 1i64..20), 0..5),
            (wn, wd) in (-9i64..9, 1i64..9),
        ) {
            // The backward pass's `cost(e) + 1·V(s')` (`Value::sum_scaled`): the fused form
            // of the exact polynomials must give the default's numerators and denominator
            // (the report reads the unreduced form), not only its value.
            use crate::exact::{FracPoly, Poly, Var};
            let monomial = |k: usize| match k {
                0 => Poly::constant(q(1, 1)),
                1 => Poly::var(Var::LogZ),
                2 => Poly::var(Var::Atom(3u32.into())),
                _ => Poly::var(Var::V(0)),
            };
            let build = |terms: &[(usize, i64, i64)]| {
                let mut p = FracPoly::zero();
                for &(k, n, d) in terms {
                    p.add_scaled(&FracPoly::from_poly(&monomial(k)), &q(n, d));
                }
                p
            };
            let (x, y, w) = (build(&a), build(&b), q(wn, wd));
            let form = |p: &FracPoly| {
                let terms: Vec<_> = p.numerators().map(|(m, n)| (m.clone(), n.clone())).collect();
                (terms, p.denominator().clone())
            };
            for (u, v) in [(&x, &y), (&y, &x), (&x, &x)] {
                let mut reference = u.clone();
                reference.add_scaled(v, &w);
                let fused = <FracPoly as Value<Rational>>::sum_scaled(u, v, &w);
                proptest::prop_assert_eq!(form(&fused), form(&reference));
            }
        }
    }

    #[test]
    fn csr_refuses_cycles_and_bad_edges() {
        assert!(CsrDag::new(2, 0, &[(0, 1), (1, 0)]).is_err());
        assert!(CsrDag::new(2, 0, &[(0, 2)]).is_err());
        assert!(CsrDag::new(2, 3, &[(0, 1)]).is_err());
    }

    #[test]
    fn gradient_matches_a_finite_difference_of_the_exact_value() {
        // s0 -> {a, x1}; a -> {x1, x2}: F(q) = Σ_τ q(τ)·cost(τ); the softmax gradient of the
        // value at the source, checked against the exact derivative by the quotient rule.
        let dag = CsrDag::new(4, 0, &[(0, 1), (0, 2), (1, 2), (1, 3)]).unwrap();
        let policy = vec![q(1, 3), q(2, 3), q(1, 4), q(3, 4)];
        let cost = vec![q(0, 1), q(5, 1), q(7, 1), q(11, 1)];
        let flows = forward_flows(&dag, &policy);
        let values = backward(&dag, &policy, &cost, |_| Rational::zero());
        // F = q0·(q2·7 + q3·11) + q1·5; ∂F/∂θ_0 = q0·q1·((q2·7 + q3·11) − 5).
        let inner = q(1, 4) * q(7, 1) + q(3, 4) * q(11, 1);
        assert_eq!(values.value[0], q(1, 3) * inner.clone() + q(2, 3) * q(5, 1));
        let grad = policy_gradient(&dag, &policy, &flows, &values, None);
        assert_eq!(grad[0], q(1, 3) * q(2, 3) * (inner - q(5, 1)));
        assert_eq!(grad[0].clone() + grad[1].clone(), Rational::zero());
        // ∂F/∂θ_2 = occ(a)·q2·q3·(7 − 11).
        assert_eq!(grad[2], q(1, 3) * q(1, 4) * q(3, 4) * q(-4, 1));
        // A cost that depends on q through a score weight adds occ·q(b)·(w_b − E[w]).
        let w = vec![q(1, 1), q(0, 1), q(2, 1), q(0, 1)];
        let scored = policy_gradient(&dag, &policy, &flows, &values, Some(&w));
        assert_eq!(scored[0].clone() - &grad[0], q(1, 3) * (q(1, 1) - q(1, 3)));
        // The prefix sums carry the start value with the occupancy.
        let prefix = prefix_sums(&dag, &policy, &flows, q(1, 1), &cost);
        assert_eq!(prefix[3], q(1, 3) * q(3, 4) * (q(1, 1) + q(11, 1)));
    }
}
