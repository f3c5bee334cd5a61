//! Snapshots (insta, under `snapshots/`) of the derivations of every claim on three
//! environments: what a reader reviews when the engine's output changes.
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
        "{}: {}\nholds: {:?}\n\n",
        cert.claim, cert.statement, cert.holds
    );
    for d in &cert.derivations {
        out.push_str(&d.render(&env).to_text());
        out.push('\n');
    }
    out
}

#[test]
fn derivations_of_every_claim_on_three_environments() {
    for spec in ["chain.toml", "diamond.toml", "two-paths.toml"] {
        for claim in ["C1", "C2", "C3", "C4", "C5"] {
            let name = format!("{}-{claim}", spec.trim_end_matches(".toml"));
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(name, derivations_text(spec, claim));
            });
        }
    }
}
