//! Snapshots (insta, under `snapshots/`) of the derivations of C6, C7 and C8 on three
//! environments (one with an irrational optimum, where the parts that need `q*` are skipped).
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

#[test]
fn derivations_of_c6_c7_c8_on_three_environments() {
    for spec in [
        "two-paths.toml",
        "diamond.toml",
        "three-halves-irrational.toml",
    ] {
        for claim in ["C6", "C7", "C8"] {
            let name = format!("{}-{claim}", spec.trim_end_matches(".toml"));
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(name, derivations_text(spec, claim));
            });
        }
    }
}
