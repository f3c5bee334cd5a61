//! Monte Carlo at scale: the sample-mean logit gradients of the batched kernels agree with the
//! exact expectations within the stated bound on every spec, and every mutant that changes a
//! kernel (or the expected factor) is caught where β ≠ 1. No timing is asserted.
use std::path::PathBuf;
use std::process::Command;

use rtb_trustpcl::agreement::montecarlo::{run_mc, McConfig};
use rtb_trustpcl::mutant::Mutant;

fn cfg(spec: &str, samples: usize, seed: u64, mutant: Option<Mutant>) -> McConfig {
    McConfig {
        spec: PathBuf::from(spec),
        samples,
        seed,
        mutant,
        ..McConfig::default()
    }
}

fn specs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("spec")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn holds_on_every_spec() {
    for spec in specs() {
        let r = run_mc(&cfg(&spec, 200_000, 3, None)).unwrap();
        assert!(r.report.all_hold, "{spec}: max |z| = {}", r.max_abs_z);
        assert_eq!(r.report.checks.len(), 5);
        // chain.toml has one child per state: every logit gradient is identically 0.
        assert!(
            r.tested_parameters > 0 || spec.ends_with("chain.toml"),
            "{spec}"
        );
        assert!(r.z_threshold > 4.8 && r.z_threshold < 7.0);
    }
}

#[test]
fn holds_at_a_million_samples() {
    for spec in ["spec/two-paths.toml", "spec/lattice.toml"] {
        let r = run_mc(&cfg(spec, 1_000_000, 11, None)).unwrap();
        assert!(r.report.all_hold, "{spec}: max |z| = {}", r.max_abs_z);
    }
}

/// The checks each mutant must break on a β ≠ 1 spec.
fn affected(m: Mutant) -> &'static [&'static str] {
    match m {
        Mutant::MissingHalf => &["mc/tpcl"],
        Mutant::FlippedSign => &["mc/tpcl", "mc/tpcl-surrogate"],
        Mutant::BetaOnRatio => &["mc/rtb-logz-0", "mc/rtb-logz-star"],
        Mutant::AlphaNotSquared => &["mc/tpcl"],
    }
}

#[test]
fn mutants_fail() {
    for spec in [
        "spec/two-paths.toml",
        "spec/diamond.toml",
        "spec/half-irrational.toml",
    ] {
        for m in Mutant::ALL {
            let r = run_mc(&cfg(spec, 200_000, 5, Some(m))).unwrap();
            assert!(!r.report.all_hold, "{spec} {m}");
            for c in &r.report.checks {
                let hit = affected(m).contains(&c.id.as_str());
                assert_eq!(
                    !c.holds, hit,
                    "{spec} {m}: {} ratio {}",
                    c.id, c.max_error_over_bound
                );
            }
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(run_mc(&cfg("spec/no-such.toml", 1000, 0, None)).is_err());
    assert!(run_mc(&cfg("tests/invalid/cycle.toml", 1000, 0, None)).is_err());
    assert!(run_mc(&cfg("spec/two-paths.toml", 1, 0, None)).is_err());
}

#[test]
fn cli_json_and_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_rtb-trustpcl");
    let out = Command::new(bin)
        .args([
            "gradcheck",
            "--spec",
            "spec/two-paths.toml",
            "--samples",
            "100000",
            "--seed",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "dtype",
        "batch",
        "steps",
        "device",
        "all_hold",
        "checks",
        "seconds",
        "max_abs_z",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["batch"], 100000);
    assert!(v["max_abs_z"].as_f64().unwrap() < v["z_threshold"].as_f64().unwrap());
    let fail = Command::new(bin)
        .args([
            "gradcheck",
            "--spec",
            "spec/two-paths.toml",
            "--samples",
            "100000",
            "--mutant",
            "beta-on-ratio",
        ])
        .output()
        .unwrap();
    assert_eq!(fail.status.code(), Some(1));
    let bad = Command::new(bin)
        .args([
            "gradcheck",
            "--spec",
            "spec/missing.toml",
            "--samples",
            "10",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
