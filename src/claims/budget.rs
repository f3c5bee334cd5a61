//! The budget of a verification run: wall time, resident memory, digits of the numbers, and
//! the cost of the enumeration cross-checks. Defaults keep any run on a 24 GiB machine under
//! 4 GB.
//!
//! - Digits are checked before work starts: every rational of the spec (and β), and then the
//!   optimum `F*` (whose digits grow like `β × digits(r)`), are refused above the budget.
//! - Enumeration is a cross-check, chosen by a cost estimate computed by dynamic programming
//!   (no path is listed): the number of per-step terms the enumeration routes would build,
//!   `Σ_τ Σ_{e ∈ τ} outdeg(tail e)` for trajectories (the softmax chain rule visits every
//!   sibling) and `Σ_w |w|` for windows. Above the budget the enumeration routes are skipped
//!   with that reason; the structural, generic and DP routes still decide every claim.
//! - Time and memory are checked at checkpoints: after the optimum and after the coprime base
//!   in `ClaimContext::new`, every `dag::flow::CHECK_EVERY` states inside each pass of the DP
//!   routes (`*_until`), and between chunks of an enumeration, which is streamed: derivations
//!   are built and recorded chunk by chunk, so memory does not grow with the number of
//!   trajectories. Past either, every later checkpoint fails, the passes stop (their partial
//!   values are discarded), and the report is replaced by an error naming the quantity
//!   (exit 2).
use crate::dag::{self, Environment};
use crate::exact::{ExactError, Rational};
use num_bigint::BigInt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A limit of the budget that a run exceeded; the message names the quantity and the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetExceeded {
    /// Wall-clock time.
    #[error("time: {elapsed} s elapsed, over the budget of {limit} s (--budget-seconds)")]
    Time {
        /// Seconds elapsed.
        elapsed: u64,
        /// `--budget-seconds`.
        limit: u64,
    },
    /// Resident memory.
    #[error("memory: {resident} MB resident, over the budget of {limit} MB (--budget-memory-mb)")]
    Memory {
        /// Resident MB.
        resident: u64,
        /// `--budget-memory-mb`.
        limit: u64,
    },
    /// Digits of a number of the inputs or of the optimum.
    #[error("digits: the {part} of {what} has about {digits} digits, over the budget of {limit} (--budget-digits)")]
    Digits {
        /// `numerator` or `denominator`.
        part: &'static str,
        /// The number's name.
        what: String,
        /// Its digits (estimated from its bits).
        digits: u64,
        /// `--budget-digits`.
        limit: u64,
    },
    /// Digits of `r(x)^β`, estimated before it is computed.
    #[error("digits: F*({state}) = r({state})^β = ({reward})^({beta}) would have about {estimate} digits, over the budget of {limit} (--budget-digits)")]
    Power {
        /// The terminal's name.
        state: String,
        /// `r(x)` (boxed, as every large field here: keeps the error small).
        reward: Box<Rational>,
        /// `β`.
        beta: Box<Rational>,
        /// Estimated digits.
        estimate: Box<BigInt>,
        /// `--budget-digits`.
        limit: u64,
    },
}

impl From<BudgetExceeded> for ExactError {
    fn from(e: BudgetExceeded) -> Self {
        // `exact` sits below `claims` in the layering: the run's error carries the message.
        ExactError::Budget(e.to_string())
    }
}

/// Why an enumeration cross-check was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnumerationSkipped {
    /// More paths than the count limit of the options.
    #[error(transparent)]
    Count(#[from] dag::EnumerationRefused),
    /// The cost estimate is over `--budget-enumeration-steps`.
    #[error("{what}: enumeration would build about {steps} per-step terms, over the budget of {limit} (--budget-enumeration-steps; structural and DP routes still run)")]
    Cost {
        /// `trajectories` or `windows`.
        what: &'static str,
        /// The estimated per-step terms.
        steps: u128,
        /// `--budget-enumeration-steps`.
        limit: u64,
    },
}

/// The limits of a run, and the shared record of the first one exceeded.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Wall-clock time for one environment.
    pub seconds: u64,
    /// Resident memory of the process, in MB.
    pub memory_mb: u64,
    /// Decimal digits of any numerator or denominator of the inputs and of `F*`.
    pub digits: u64,
    /// Per-step terms the enumeration cross-checks may build (trajectories and windows each).
    pub enumeration_steps: u64,
    started: Instant,
    exceeded: Arc<OnceLock<BudgetExceeded>>,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(300, 3072, 2000, 50_000)
    }
}

impl Budget {
    /// A budget with these limits, its clock started now.
    pub fn new(seconds: u64, memory_mb: u64, digits: u64, enumeration_steps: u64) -> Self {
        Self {
            seconds,
            memory_mb,
            digits,
            enumeration_steps,
            started: Instant::now(),
            exceeded: Arc::new(OnceLock::new()),
        }
    }

    /// The same limits with a fresh clock and record (one per environment).
    pub fn restarted(&self) -> Self {
        Self::new(
            self.seconds,
            self.memory_mb,
            self.digits,
            self.enumeration_steps,
        )
    }

    /// Why the run stopped, if a limit was exceeded.
    pub fn exceeded(&self) -> Option<&BudgetExceeded> {
        self.exceeded.get()
    }

    /// A checkpoint: true when the run may go on; false (and the reason recorded) once the
    /// time or memory budget is spent.
    pub fn checkpoint(&self) -> bool {
        if self.exceeded.get().is_some() {
            return false;
        }
        let elapsed = self.started.elapsed();
        if elapsed > Duration::from_secs(self.seconds) {
            let _ = self.exceeded.set(BudgetExceeded::Time {
                elapsed: elapsed.as_secs(),
                limit: self.seconds,
            });
            return false;
        }
        if let Some(mb) = resident_mb() {
            if mb > self.memory_mb {
                let _ = self.exceeded.set(BudgetExceeded::Memory {
                    resident: mb,
                    limit: self.memory_mb,
                });
                return false;
            }
        }
        true
    }

    /// A checkpoint as a result: the recorded reason once the time or memory budget is spent.
    pub fn stop_if_spent(&self) -> Result<(), BudgetExceeded> {
        match self.checkpoint() {
            true => Ok(()),
            false => Err(self
                .exceeded()
                .cloned()
                .expect("a failed checkpoint records its reason")),
        }
    }

    /// Refuses a number with more digits than the budget; `what` names it.
    pub fn check_digits(&self, what: &str, r: &Rational) -> Result<(), BudgetExceeded> {
        for (part, n) in [("numerator", r.numer()), ("denominator", r.denom())] {
            // bits·log10(2) ≥ digits − 1: exact enough to refuse, and free.
            let digits = n.bits() * 30103 / 100_000 + 1;
            if digits > self.digits {
                return Err(BudgetExceeded::Digits {
                    part,
                    what: what.into(),
                    digits,
                    limit: self.digits,
                });
            }
        }
        Ok(())
    }

    /// Refuses an environment whose inputs have too many digits: β, every prior, posterior and
    /// reward.
    pub fn check_inputs(&self, env: &Environment) -> Result<(), BudgetExceeded> {
        self.check_digits("β", &env.beta)?;
        for (e, edge) in env.edges.iter().enumerate() {
            self.check_digits(&format!("prior of edge {}", env.edge_name(e)), &edge.prior)?;
            self.check_digits(
                &format!("posterior of edge {}", env.edge_name(e)),
                &edge.posterior,
            )?;
        }
        for x in env.terminals() {
            self.check_digits(&format!("reward of {}", env.states[x]), env.reward(x))?;
        }
        Ok(())
    }

    /// Refuses `r(x)^β` before it is computed when its digits would exceed the budget
    /// (`digits(r^β) ≈ β·digits(r)`).
    pub fn check_powers(&self, env: &Environment) -> Result<(), BudgetExceeded> {
        let (n, d) = (env.beta.numer(), env.beta.denom());
        for x in env.terminals() {
            let r = env.reward(x);
            let bits = r.numer().bits().max(r.denom().bits());
            // digits ≈ bits·(n/d)·log10 2, in integers; d ≥ 1.
            let estimate = BigInt::from(bits) * n * 30103u32 / (BigInt::from(100_000u32) * d);
            if estimate > BigInt::from(self.digits) {
                return Err(BudgetExceeded::Power {
                    state: env.states[x].clone(),
                    reward: Box::new(r.clone()),
                    beta: Box::new(env.beta.clone()),
                    estimate: Box::new(estimate),
                    limit: self.digits,
                });
            }
        }
        Ok(())
    }
}

/// Resident memory of this process in MB (Linux `/proc/self/statm`), `None` elsewhere.
fn resident_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096 / (1024 * 1024))
}

/// The enumeration cost estimates of an environment, by dynamic programming (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumerationCost {
    /// `Σ_τ Σ_{e ∈ τ} outdeg(tail e)` over the trajectories.
    pub trajectory_steps: u128,
    /// `Σ_w |w|` over the windows.
    pub window_steps: u128,
}

/// Computes the estimates without listing a path.
pub fn enumeration_cost(env: &Environment) -> EnumerationCost {
    let n = env.states.len();
    // Paths from the source to s, and from s to a terminal.
    let mut from_source = vec![0u128; n];
    from_source[env.source] = 1;
    // Paths ending at s starting anywhere (empty included), and starting at s (empty included).
    let mut ending = vec![1u128; n];
    for &s in &env.topo {
        for &e in &env.out_edges[s] {
            let to = env.edges[e].to;
            from_source[to] = from_source[to].saturating_add(from_source[s]);
            ending[to] = ending[to].saturating_add(ending[s]);
        }
    }
    let mut to_terminal = vec![0u128; n];
    let mut starting = vec![1u128; n];
    for &s in env.topo.iter().rev() {
        if env.is_terminal(s) {
            to_terminal[s] = 1;
        }
        for &e in &env.out_edges[s] {
            let to = env.edges[e].to;
            to_terminal[s] = to_terminal[s].saturating_add(to_terminal[to]);
            starting[s] = starting[s].saturating_add(starting[to]);
        }
    }
    let (mut trajectory_steps, mut window_steps) = (0u128, 0u128);
    for edge in &env.edges {
        let through = from_source[edge.from].saturating_mul(to_terminal[edge.to]);
        let degree = env.out_edges[edge.from].len() as u128;
        trajectory_steps = trajectory_steps.saturating_add(through.saturating_mul(degree));
        window_steps =
            window_steps.saturating_add(ending[edge.from].saturating_mul(starting[edge.to]));
    }
    EnumerationCost {
        trajectory_steps,
        window_steps,
    }
}

/// Every trajectory and every window, or why each enumeration is refused: above the count
/// limits of the options, or above the cost budget.
#[allow(clippy::type_complexity)]
pub fn enumerations(
    env: &Environment,
    max_trajectories: u64,
    max_windows: u64,
    budget: &Budget,
) -> (
    Result<Vec<Vec<usize>>, EnumerationSkipped>,
    Result<Vec<Vec<usize>>, EnumerationSkipped>,
) {
    let cost = enumeration_cost(env);
    let over = |what: &'static str, steps: u128| EnumerationSkipped::Cost {
        what,
        steps,
        limit: budget.enumeration_steps,
    };
    // The count limits first (they name the count the user set), then the cost budget.
    let trajectories = match dag::trajectory_count(env) {
        n if n > max_trajectories.into() => {
            dag::trajectories(env, max_trajectories).map_err(EnumerationSkipped::from)
        }
        _ if cost.trajectory_steps > u128::from(budget.enumeration_steps) => {
            Err(over("trajectories", cost.trajectory_steps))
        }
        _ => dag::trajectories(env, max_trajectories).map_err(EnumerationSkipped::from),
    };
    let windows = match dag::window_count(env) {
        n if n > max_windows.into() => {
            dag::windows(env, max_windows).map_err(EnumerationSkipped::from)
        }
        _ if cost.window_steps > u128::from(budget.enumeration_steps) => {
            Err(over("windows", cost.window_steps))
        }
        _ => dag::windows(env, max_windows).map_err(EnumerationSkipped::from),
    };
    (trajectories, windows)
}

/// Derives and records every item in chunks, in order: memory holds one chunk of derivations
/// at a time, and the budget is checked between chunks (`false`: stopped by the budget).
pub(crate) fn stream<T: Sync, D: Send>(
    budget: &Budget,
    items: &[T],
    derive: impl Fn(&T) -> D + Sync + Send,
    mut record: impl FnMut(D),
) -> bool {
    const CHUNK: usize = 256;
    for chunk in items.chunks(CHUNK) {
        if !budget.checkpoint() {
            return false;
        }
        for d in super::derive_all(chunk, &derive) {
            record(d);
        }
    }
    true
}

/// The forward flows of a policy, exactly, in [`Lehmer`](crate::exact::gcd::Lehmer) arithmetic (`num-rational`'s `+`
/// and `·` take a binary gcd, the largest single cost of the passes at 10,000 edges), stopped
/// at the budget's checkpoints.
pub(crate) fn flows_of(
    env: &crate::dag::Environment,
    policy: &[Rational],
    budget: &Budget,
) -> crate::dag::flow::Flows<Rational> {
    let flows = crate::dag::flow::forward_flows_until(
        env,
        &crate::exact::gcd::Lehmer::wrap(policy),
        &|| budget.checkpoint(),
    );
    crate::dag::flow::Flows {
        state: crate::exact::gcd::Lehmer::unwrap_all(flows.state),
        edge: crate::exact::gcd::Lehmer::unwrap_all(flows.edge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::spec::from_toml_str;

    #[test]
    fn cost_estimates_match_the_enumerations() {
        let env = crate::dag::load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/spec/diamond.toml"
        )))
        .unwrap();
        let cost = enumeration_cost(&env);
        let paths = dag::trajectories(&env, 1000).unwrap();
        let listed: u128 = paths
            .iter()
            .flat_map(|p| p.iter())
            .map(|&e| env.out_edges[env.edges[e].from].len() as u128)
            .sum();
        assert_eq!(cost.trajectory_steps, listed);
        let windows = dag::windows(&env, 1000).unwrap();
        let listed: u128 = windows.iter().map(|w| w.len() as u128).sum();
        assert_eq!(cost.window_steps, listed);
    }

    #[test]
    fn digits_and_powers_are_refused_above_the_budget() {
        let env = from_toml_str(
            r#"
name = "t"
beta = "10000"
source = "s0"
[rewards]
x1 = "3"
x2 = "1/2"
[[edge]]
from = "s0"
to = "x1"
prior = "1/3"
[[edge]]
from = "s0"
to = "x2"
prior = "2/3"
"#,
            "t",
        )
        .unwrap();
        let budget = Budget::default();
        assert!(budget.check_inputs(&env).is_ok());
        let err = budget.check_powers(&env).unwrap_err();
        assert!(err.to_string().starts_with("digits: F*(x1)"), "{err}");
        assert!(matches!(err, BudgetExceeded::Power { ref state, .. } if state == "x1"));
        let small = Budget::new(300, 3072, 3, 60_000);
        let big = crate::exact::parse_rational("12345/2").unwrap();
        assert!(small
            .check_digits("r", &big)
            .unwrap_err()
            .to_string()
            .contains("numerator"));
        assert!(Budget::new(300, 3072, 5, 60_000)
            .check_digits("r", &big)
            .is_ok());
    }

    #[test]
    fn a_spent_time_budget_stops_at_the_next_checkpoint() {
        let budget = Budget::new(0, 1 << 40, 2000, 60_000);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(!budget.checkpoint());
        assert!(budget.exceeded().unwrap().to_string().starts_with("time:"));
        assert!(matches!(
            budget.exceeded(),
            Some(BudgetExceeded::Time { limit: 0, .. })
        ));
        let generous = Budget::default();
        assert!(generous.checkpoint() && generous.exceeded().is_none());
    }
}
