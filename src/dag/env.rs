//! The validated environment type.
use crate::exact::{Rational, VarNames};
use num_traits::Zero;
use std::collections::HashMap;
use std::fmt::Write;

/// An edge `from → to` with its exact prior probability and the concrete posterior `q` used
/// where a claim needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Source state index.
    pub from: usize,
    /// Target state index.
    pub to: usize,
    /// Prior (reference) probability `p(to | from)`.
    pub prior: Rational,
    /// Concrete posterior `q(to | from)`: the spec's, or uniform over the state's children.
    pub posterior: Rational,
    /// True when the spec gave the posterior (false: uniform was filled in).
    pub posterior_given: bool,
}

/// A validated environment: a DAG with one source, every state on a path from the source to
/// a terminal (sink), priors and posteriors summing to exactly one at every state, and a
/// positive reward on every terminal.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The file it was loaded from (or a label).
    pub file: String,
    /// The environment's name.
    pub name: String,
    /// Inverse temperature β > 0.
    pub beta: Rational,
    /// State names, the source first.
    pub states: Vec<String>,
    /// State name → index.
    pub state_index: HashMap<String, usize>,
    /// The source state's index.
    pub source: usize,
    /// The edges, in file order.
    pub edges: Vec<Edge>,
    /// Outgoing edge indices per state.
    pub out_edges: Vec<Vec<usize>>,
    /// Incoming edge indices per state.
    pub in_edges: Vec<Vec<usize>>,
    /// States in a topological order (the source first).
    pub topo: Vec<usize>,
    /// Reward per state (`Some` exactly on terminals).
    pub rewards: Vec<Option<Rational>>,
}

impl Environment {
    /// The KL weight `α = 1/β`.
    pub fn alpha(&self) -> Rational {
        self.beta.recip()
    }

    /// True when `s` is a terminal (a sink).
    pub fn is_terminal(&self, s: usize) -> bool {
        self.out_edges[s].is_empty()
    }

    /// Terminal state indices, in state order.
    pub fn terminals(&self) -> Vec<usize> {
        (0..self.states.len())
            .filter(|&s| self.is_terminal(s))
            .collect()
    }

    /// The reward of a terminal.
    pub fn reward(&self, x: usize) -> &Rational {
        self.rewards[x]
            .as_ref()
            .expect("validated environments have a reward on every terminal")
    }

    /// `from->to` of an edge.
    pub fn edge_name(&self, e: usize) -> String {
        let edge = &self.edges[e];
        format!("{}->{}", self.states[edge.from], self.states[edge.to])
    }

    /// `s0,a,x1` for a path given by its edges.
    pub fn path_name(&self, path: &[usize]) -> String {
        let mut names = vec![self.states[self.edges[path[0]].from].clone()];
        names.extend(path.iter().map(|&e| self.states[self.edges[e].to].clone()));
        names.join(",")
    }

    /// The concrete posterior of every edge.
    pub fn posterior(&self) -> Vec<Rational> {
        self.edges.iter().map(|e| e.posterior.clone()).collect()
    }

    /// The TOML spec of this environment (the concrete posterior written where it was given).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name = \"{}\"", self.name);
        let _ = writeln!(out, "beta = \"{}\"", self.beta);
        let _ = writeln!(out, "source = \"{}\"", self.states[self.source]);
        let _ = writeln!(out, "\n[rewards]");
        for x in self.terminals() {
            let _ = writeln!(out, "\"{}\" = \"{}\"", self.states[x], self.reward(x));
        }
        for edge in &self.edges {
            let _ = writeln!(out, "\n[[edge]]");
            let _ = writeln!(out, "from = \"{}\"", self.states[edge.from]);
            let _ = writeln!(out, "to = \"{}\"", self.states[edge.to]);
            let _ = writeln!(out, "prior = \"{}\"", edge.prior);
            if edge.posterior_given {
                let _ = writeln!(out, "posterior = \"{}\"", edge.posterior);
            }
        }
        out
    }

    /// Sum of priors out of `s` (exactly 1 on validated non-terminals).
    pub fn prior_mass(&self, s: usize) -> Rational {
        self.out_edges[s]
            .iter()
            .fold(Rational::zero(), |acc, &e| acc + &self.edges[e].prior)
    }
}

impl VarNames for Environment {
    fn state(&self, s: usize) -> String {
        self.states[s].clone()
    }
    fn edge(&self, e: usize) -> String {
        self.edge_name(e)
    }
}
