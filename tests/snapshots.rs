//! Snapshots (insta, under `snapshots/`) of the derivations of every claim: C1–C5 on three
//! environments, C6–C8 on three (one with an irrational optimum, where the parts that need `q*`
//! are skipped). What a reader reviews when the engine's output changes.
use rtb_trustpcl::claims::{verify_environment, ClaimContext, VerifyOptions};
use rtb_trustpcl::dag::load_file;
use std::path::PathBuf;

fn derivations_text(spec: &str, claim: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec")
        .join(spec);
    let env = load_file(&path).unwrap();
    let options = VerifyOptions {
        keep: 1,
        ..VerifyOptions::default()
    };
    let ctx = ClaimContext::new(&env, options).unwrap();
    let cert = verify_environment(&ctx)
        .into_iter()
        .find(|c| c.claim == claim)
        .unwrap();
    let mut out = format!(
        "{}: {}\nholds: {:?}\nskipped: {:?}\n\n",
        cert.claim,
        cert.statement,
        cert.holds,
        cert.skipped()
    );
    for d in &cert.derivations {
        out.push_str(&d.render(&env).to_text());
        out.push('\n');
    }
    out
}

fn snapshot_all(specs: &[&str], claims: &[&str]) {
    for spec in specs {
        for claim in claims {
            let name = format!("{}-{claim}", spec.trim_end_matches(".toml"));
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(name, derivations_text(spec, claim));
            });
        }
    }
}

#[test]
fn derivations_of_c1_to_c5_on_three_environments() {
    snapshot_all(
        &["chain.toml", "diamond.toml", "two-paths.toml"],
        &["C1", "C2", "C3", "C4", "C5"],
    );
}

#[test]
fn derivations_of_c6_c7_c8_on_three_environments() {
    snapshot_all(
        &[
            "two-paths.toml",
            "diamond.toml",
            "three-halves-irrational.toml",
        ],
        &["C6", "C7", "C8"],
    );
}
