//! Architecture invariants, checked on the source: no floating point in the exact engine or
//! in the claims' decisions, and Trust-PCL never computed from RTB.
use std::fs;
use std::path::Path;

fn sources(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    for entry in fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "rs") {
            out.push((
                path.display().to_string(),
                fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

#[test]
fn the_exact_engine_and_the_claims_use_no_floating_point() {
    for dir in ["src/exact", "src/claims", "src/dag", "src/coq"] {
        for (file, text) in sources(dir) {
            for line in code_lines(&text) {
                for token in ["f32", "f64", "to_f64", "as f"] {
                    assert!(!line.contains(token), "{file}: `{token}` in `{line}`");
                }
            }
        }
    }
}

#[test]
fn trust_pcl_is_never_built_from_rtb() {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/objectives/trust_pcl.rs"),
    )
    .unwrap();
    for line in code_lines(&text) {
        assert!(
            !line.contains("rtb"),
            "trust_pcl.rs refers to RTB: `{line}`"
        );
    }
}
