//! The command line end to end: the report on spec/, the JSON schema, exit codes, mutants, and
//! the invalid-spec corpus (each file refused with exit 2 and a message naming its field).
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtb-trustpcl"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn verify_reports_every_environment_and_all_hold() {
    let out = cli(&["verify", "--max-windows", "5000"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("ALL HOLD"));
    for entry in std::fs::read_dir(root().join("spec")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            stdout.contains(&format!("== {name} ")),
            "report lacks {name}"
        );
    }
}

#[test]
fn json_report_follows_the_schema() {
    let out = cli(&["verify", "--json", "--max-windows", "5000"]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(report["all_hold"], Value::Bool(true));
    let envs = report["environments"].as_array().unwrap();
    assert!(envs.len() >= 8);
    for env in envs {
        for key in ["file", "name", "beta", "trajectories"] {
            assert!(env[key].is_string(), "{key} in {env}");
        }
        for key in ["states", "edges", "terminals"] {
            assert!(env[key].is_u64(), "{key}");
        }
        assert!(env["trajectories"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit()));
        let rational = !env["z_star"].is_null();
        for key in ["log_z_star", "q_star", "kl_q_to_qstar"] {
            assert_eq!(!env[key].is_null(), rational, "{key} null iff z_star null");
        }
        if rational {
            assert!(env["log_z_star"]["exact"].is_string());
            assert!(env["log_z_star"]["approx"].is_f64());
            assert!(env["q_star"]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| k.contains("->")));
        }
        assert!(env["j_q"]["approx"].is_f64());
        // ∂J/∂θ on every edge; ∂KL(q‖q*)/∂θ likewise, null iff q* is irrational.
        let edges = env["edges"].as_u64().unwrap() as usize;
        let grad_j = env["grad_j"].as_object().unwrap();
        assert_eq!(grad_j.len(), edges);
        for (edge, value) in grad_j {
            assert!(edge.contains("->"));
            assert!(value["exact"].is_string() && value["approx"].is_f64());
        }
        assert_eq!(!env["grad_kl_qstar"].is_null(), rational);
        if rational {
            let grad_kl = env["grad_kl_qstar"].as_object().unwrap();
            assert_eq!(grad_kl.len(), edges);
            // ∇KL(q‖q*) = −β·∇J, in the approximations too.
            let beta = {
                let b = env["beta"].as_str().unwrap();
                match b.split_once('/') {
                    Some((n, d)) => n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap(),
                    None => b.parse::<f64>().unwrap(),
                }
            };
            for (edge, value) in grad_kl {
                let (kl, j) = (
                    value["approx"].as_f64().unwrap(),
                    grad_j[edge]["approx"].as_f64().unwrap(),
                );
                assert!(
                    (kl + beta * j).abs() <= 1e-9 * (1.0 + kl.abs()),
                    "{edge}: {kl} vs {j}"
                );
            }
        }
        let flawed = &env["flawed"];
        assert!(flawed["kappa"].is_string());
        assert!(flawed["kl_qstar_to_flawed"].as_f64().unwrap() >= 0.0);
        assert_eq!(flawed["converged"], Value::Bool(true));
        assert_eq!(!flawed["largest_component"].is_null(), rational);
        let claims = env["claims"].as_array().unwrap();
        let ids: Vec<&str> = claims.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"]);
        for c in claims {
            assert!(c["holds"].is_boolean() || c["holds"].is_null());
            assert!(c["checked"].is_u64());
            assert!(c["skipped"].is_string() || c["skipped"].is_null());
            assert!(c["summary"].is_string());
        }
    }
}

#[test]
fn mutants_fail_with_exit_1_and_name_the_offending_term() {
    for mutant in [
        "missing-half",
        "flipped-sign",
        "beta-on-ratio",
        "alpha-not-squared",
    ] {
        let out = cli(&["verify", "spec/two-paths.toml", "--mutant", mutant]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{mutant}: {stdout}");
        assert!(
            stdout.contains("FAILS") && stdout.contains("refuted"),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("MUTANT IN FORCE: {mutant}")));
    }
}

#[test]
fn bad_arguments_and_missing_files_exit_2() {
    for args in [
        vec!["verify", "--mutant", "nonsense"],
        vec!["verify", "no/such/dir"],
        vec!["derive", "spec/two-paths.toml", "--claim", "C9"],
        vec![
            "derive",
            "spec/two-paths.toml",
            "--claim",
            "C1",
            "--trajectory",
            "s0,x2",
        ],
        vec![
            "derive",
            "spec/two-paths.toml",
            "--claim",
            "C1",
            "--trajectory",
            "s0,a",
        ],
        vec!["bogus-subcommand"],
    ] {
        let out = cli(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty());
    }
}

#[test]
fn derive_prints_a_derivation_that_holds() {
    let out = cli(&[
        "derive",
        "spec/two-paths.toml",
        "--claim",
        "C1",
        "--trajectory",
        "s0,a,x1",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("collect C + α·δ") && stdout.contains("∎ holds"));
    let out = cli(&[
        "derive",
        "spec/two-paths.toml",
        "--claim",
        "C4",
        "--trajectory",
        "a,x1",
        "--mutant",
        "flipped-sign",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("✗ FAILS"));
    let out = cli(&["derive", "spec/diamond.toml", "--claim", "C3", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let derivations: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(derivations
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["holds"] == Value::Bool(true)));
}

#[test]
fn duplicate_names_across_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("rtb-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = std::fs::read_to_string(root().join("spec/two-paths.toml")).unwrap();
    std::fs::write(dir.join("a.toml"), &spec).unwrap();
    std::fs::write(dir.join("b.toml"), &spec).unwrap();
    let out = cli(&["verify", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("name `two-paths` is already used"));
}

#[test]
fn every_invalid_spec_is_refused_with_exit_2_naming_its_field() {
    let dir = root().join("tests/invalid");
    let expected: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("EXPECTED.toml")).unwrap()).unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "EXPECTED.toml" {
            continue;
        }
        files += 1;
        let field = expected
            .get(&name)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{name} has no entry in EXPECTED.toml"));
        let out = cli(&["verify", path.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let message = stderr.replace(&path.display().to_string(), "");
        assert!(
            message.contains(field),
            "{name}: `{field}` not in {message}"
        );
        assert!(!stderr.contains("panicked"), "{name} panicked");
        // Nothing from the file reaches the terminal raw (issue 13: escaped names).
        assert!(
            !stderr
                .chars()
                .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{name}: raw control character in {stderr:?}"
        );
    }
    assert!(files >= 30, "the invalid corpus has one file per refusal");
    let base = cli(&[
        "verify",
        Path::new("tests/invalid-base.toml").to_str().unwrap(),
    ]);
    assert_eq!(
        base.status.code(),
        Some(0),
        "the valid base of the corpus loads"
    );
}
