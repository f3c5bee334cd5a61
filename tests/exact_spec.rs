//! The f64 kernels against the exact engine on trajectories sampled from every `spec/`
//! environment: every `exact-spec/<kernel>` check holds, each mutant breaks exactly the kernels
//! it changes, `run_checks` appends the checks, and bad input is an error.
use std::path::PathBuf;

use rtb_trustpcl::agreement::exact_spec::{exact_spec_checks, ExactSpecOptions};
use rtb_trustpcl::agreement::gradcheck::{run_checks, GradcheckConfig};
use rtb_trustpcl::dag::load_dir;
use rtb_trustpcl::mutant::Mutant;

fn envs() -> Vec<rtb_trustpcl::dag::Environment> {
    load_dir(&[PathBuf::from("spec")]).unwrap()
}

#[test]
fn every_kernel_matches_the_exact_engine() {
    let envs = envs();
    for seed in [0, 7] {
        let opts = ExactSpecOptions {
            samples: 96,
            seed,
            mutant: None,
        };
        let checks = exact_spec_checks(&envs, &opts).unwrap();
        assert_eq!(checks.len(), 7);
        for c in &checks {
            assert!(
                c.holds,
                "seed {seed}: {} ratio {}",
                c.id, c.max_error_over_bound
            );
            // The kernels are far more accurate than the bound: not vacuous, not loose by
            // orders of magnitude either.
            assert!(c.max_abs_error < 1e-12, "{}: {}", c.id, c.max_abs_error);
        }
    }
}

/// The kernels each mutant changes (the exact side stays correct).
fn affected(m: Mutant) -> &'static [&'static str] {
    match m {
        Mutant::MissingHalf => &["exact-spec/tpcl", "exact-spec/tpcl-windowed"],
        Mutant::FlippedSign => &[
            "exact-spec/tpcl",
            "exact-spec/tpcl-windowed",
            "exact-spec/tpcl-surrogate",
        ],
        // β on the log-ratio in both GFlowNet objectives (one definition, one mutant).
        Mutant::BetaOnRatio => &["exact-spec/rtb", "exact-spec/subtb"],
        // Changes only the factor the identity checks expect, no kernel.
        Mutant::AlphaNotSquared => &[],
    }
}

#[test]
fn each_mutant_breaks_the_kernels_it_changes() {
    let envs = envs();
    for m in Mutant::ALL {
        let opts = ExactSpecOptions {
            samples: 32,
            seed: 1,
            mutant: Some(m),
        };
        for c in exact_spec_checks(&envs, &opts).unwrap() {
            let hit = affected(m).contains(&c.id.as_str());
            assert_eq!(
                !c.holds, hit,
                "{m}: {} holds = {} (ratio {})",
                c.id, c.holds, c.max_error_over_bound
            );
            if hit {
                assert!(c.max_error_over_bound > 1e6, "{m}: {}", c.id);
            }
        }
    }
}

#[test]
fn run_checks_appends_the_exact_checks() {
    let cfg = GradcheckConfig {
        batch: 300,
        steps: 12,
        exact_specs: vec![
            PathBuf::from("spec/two-paths.toml"),
            PathBuf::from("spec/lattice.toml"),
        ],
        exact_samples: 50,
        ..Default::default()
    };
    let r = run_checks(&cfg).unwrap();
    assert_eq!(r.checks.len(), 18 + 7);
    assert!(r.all_hold);
    assert!(r.checks.iter().any(|c| c.id == "exact-spec/subtb"));
    let bad = GradcheckConfig {
        exact_specs: vec![PathBuf::from("spec/no-such-file.toml")],
        ..cfg.clone()
    };
    assert!(run_checks(&bad).is_err());
    let invalid = GradcheckConfig {
        exact_specs: vec![PathBuf::from("tests/invalid/cycle.toml")],
        ..cfg
    };
    assert!(run_checks(&invalid).is_err());
    let opts = ExactSpecOptions {
        samples: 0,
        ..Default::default()
    };
    assert!(exact_spec_checks(&envs(), &opts).is_err());
}
