//! Exact logarithms of every number an environment's claims need, over one coprime base.
use super::{Environment, Optimum};
use crate::exact::{CoprimeBase, ExactError, LogForm, Rational};

/// The logs of the optimum's numbers.
#[derive(Debug, Clone)]
pub struct OptimumLogs {
    /// `log q*(e)` per edge.
    pub log_policy: Vec<LogForm>,
    /// `log F*(s)` per state.
    pub log_flow: Vec<LogForm>,
    /// `log Z*`.
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
        if let Some(opt) = optimum {
            numbers.extend(&opt.flow);
            numbers.extend(&opt.policy);
            numbers.push(&opt.z);
        }
        let mut base = CoprimeBase::new();
        for r in numbers {
            base.insert(r.numer().magnitude());
            base.insert(r.denom().magnitude());
        }
        let log = |r: &Rational| LogForm::log_of(r, &base);
        let log_prior = env
            .edges
            .iter()
            .map(|e| log(&e.prior))
            .collect::<Result<_, _>>()?;
        let log_posterior = env
            .edges
            .iter()
            .map(|e| log(&e.posterior))
            .collect::<Result<_, _>>()?;
        let log_reward = env
            .rewards
            .iter()
            .map(|r| r.as_ref().map(log).transpose())
            .collect::<Result<_, _>>()?;
        let optimum = optimum
            .map(|opt| -> Result<OptimumLogs, ExactError> {
                Ok(OptimumLogs {
                    log_policy: opt.policy.iter().map(log).collect::<Result<_, _>>()?,
                    log_flow: opt.flow.iter().map(log).collect::<Result<_, _>>()?,
                    log_z: log(&opt.z)?,
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
