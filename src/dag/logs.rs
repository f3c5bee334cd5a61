//! Exact logarithms of every number an environment's claims need, over one coprime base.
use super::{Environment, Optimum};
use crate::exact::{CoprimeBase, ExactError, LogForm, Rational};

/// The logs of the optimum's numbers.
#[derive(Debug, Clone)]
pub struct OptimumLogs {
    /// `log q*(e) = log p(e) + log F*(s') − log F*(s)` per edge.
    pub log_policy: Vec<LogForm>,
    /// `log F*(s)` per state.
    pub log_flow: Vec<LogForm>,
    /// `log Z* = log F*(s0)`.
    pub log_z: LogForm,
}

/// The coprime base of an environment and the log-forms built over it.
#[derive(Debug, Clone)]
pub struct LogTable {
    /// The base: refined with the numerator and denominator of every number below.
    pub base: CoprimeBase,
    /// `log p(e)` per edge.
    pub log_prior: Vec<LogForm>,
    /// `log q(e)` per edge for the concrete posterior.
    pub log_posterior: Vec<LogForm>,
    /// `log r(x)` per state (`None` off terminals).
    pub log_reward: Vec<Option<LogForm>>,
    /// The optimum's logs, when the optimum is rational.
    pub optimum: Option<OptimumLogs>,
}

impl LogTable {
    /// Builds the base from every rational the environment and its optimum involve, then the
    /// log-forms over it.
    pub fn new(env: &Environment, optimum: Option<&Optimum>) -> Result<Self, ExactError> {
        let mut numbers: Vec<&Rational> = Vec::new();
        for edge in &env.edges {
            numbers.push(&edge.prior);
            numbers.push(&edge.posterior);
        }
        numbers.extend(env.rewards.iter().flatten());
        // q*(e) = p(e)·F*(s')/F*(s) and Z* = F*(s0) (checked exactly in C5), so their logs are
        // sums of logs already in the base: inserting them too would only cost gcds.
        if let Some(opt) = optimum {
            numbers.extend(&opt.flow);
        }
        let mut base = CoprimeBase::new();
        for r in numbers {
            base.insert(r.numer().magnitude());
            base.insert(r.denom().magnitude());
        }
        // Each number factors over the base independently (divisions by every base element:
        // ~5 ms on one core at 440 edges, before any claim can start), so on all cores.
        use rayon::prelude::*;
        let log = |r: &Rational| LogForm::log_of(r, &base);
        let log_prior = env
            .edges
            .par_iter()
            .map(|e| log(&e.prior))
            .collect::<Result<_, _>>()?;
        let log_posterior = env
            .edges
            .par_iter()
            .map(|e| log(&e.posterior))
            .collect::<Result<_, _>>()?;
        let log_reward = env
            .rewards
            .par_iter()
            .map(|r| r.as_ref().map(log).transpose())
            .collect::<Result<_, _>>()?;
        let optimum = optimum
            .map(|opt| -> Result<OptimumLogs, ExactError> {
                let log_flow: Vec<LogForm> =
                    opt.flow.par_iter().map(log).collect::<Result<_, _>>()?;
                let log_policy = env
                    .edges
                    .par_iter()
                    .zip(&log_prior)
                    .map(|(edge, lp): (&crate::dag::Edge, &LogForm)| {
                        lp.add(&log_flow[edge.to]).sub(&log_flow[edge.from])
                    })
                    .collect();
                Ok(OptimumLogs {
                    log_policy,
                    log_z: log_flow[env.source].clone(),
                    log_flow,
                })
            })
            .transpose()?;
        Ok(Self {
            base,
            log_prior,
            log_posterior,
            log_reward,
            optimum,
        })
    }

    /// `log r(x)` of a terminal.
    pub fn log_reward(&self, x: usize) -> &LogForm {
        self.log_reward[x]
            .as_ref()
            .expect("validated environments have a reward on every terminal")
    }
}

/// A logarithm the claims combine linearly, before it is expanded over the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogKey {
    /// `log p(e)`.
    Prior(usize),
    /// `log q(e)` of the concrete posterior.
    Posterior(usize),
    /// `log F*(s)`.
    Flow(usize),
    /// `log r(x)`.
    Reward(usize),
}

/// Which policy's log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyLog {
    /// The prior `p`.
    Prior,
    /// The spec's concrete posterior `q`.
    Posterior,
    /// The optimum `q*`, whose log is `log p(e) + log F*(s') − log F*(s)`.
    Optimal,
}

/// A rational linear combination of logs, collected by key before expansion: sums over
/// states and edges collapse coefficient-wise (a telescoping sum of `log F*` leaves only its
/// ends), so only the keys that survive are expanded over the base.
#[derive(Debug, Clone, Default)]
pub struct LogCombination {
    coefficients: std::collections::BTreeMap<LogKey, Rational>,
}

impl LogCombination {
    /// Adds `c · log(key)`.
    pub fn add(&mut self, key: LogKey, c: &Rational) {
        use num_traits::Zero;
        let entry = self.coefficients.entry(key).or_default();
        // Lehmer's gcd (`exact::gcd`) instead of `num-rational`'s binary one: C5's sums over
        // every edge of a 10,000-edge DAG go through here.
        *entry = crate::exact::gcd::add(entry, c);
        if entry.is_zero() {
            self.coefficients.remove(&key);
        }
    }

    /// Adds `c · log policy(e)`.
    pub fn add_policy(&mut self, env: &Environment, policy: PolicyLog, e: usize, c: &Rational) {
        match policy {
            PolicyLog::Prior => self.add(LogKey::Prior(e), c),
            PolicyLog::Posterior => self.add(LogKey::Posterior(e), c),
            PolicyLog::Optimal => {
                let edge = &env.edges[e];
                self.add(LogKey::Prior(e), c);
                self.add(LogKey::Flow(edge.to), c);
                self.add(LogKey::Flow(edge.from), &-c.clone());
            }
        }
    }

    /// The surviving keys and coefficients.
    pub fn terms(&self) -> impl Iterator<Item = (&LogKey, &Rational)> {
        self.coefficients.iter()
    }
}

impl LogTable {
    /// The log-form of one key, or `None` for `log F*` when the optimum is not rational.
    pub fn form(&self, key: LogKey) -> Option<&LogForm> {
        match key {
            LogKey::Prior(e) => Some(&self.log_prior[e]),
            LogKey::Posterior(e) => Some(&self.log_posterior[e]),
            LogKey::Flow(s) => self.optimum.as_ref().map(|o| &o.log_flow[s]),
            LogKey::Reward(x) => self.log_reward[x].as_ref(),
        }
    }
}
