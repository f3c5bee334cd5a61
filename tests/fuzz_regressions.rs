//! Replays the fuzz corpus and every regression input (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`, plus the seeds from `spec/` and `tests/invalid/`) through the
//! three targets of `fuzz/targets.rs`: each must return normally. Every finding of a campaign
//! becomes a file under `fuzz/regressions/` (docs/robustness.md).
#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use targets::Target;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_corpus_and_regression_input_runs_clean() {
    let scratch = std::env::temp_dir().join(format!("rtb-fuzz-replay-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut replayed = 0;
    for target in Target::ALL {
        let mut inputs = Vec::new();
        for sub in ["fuzz/corpus", "fuzz/regressions"] {
            inputs.extend(files(&root().join(sub).join(target.name())));
        }
        if target == Target::Spec {
            inputs.extend(files(&root().join("spec")));
            inputs.extend(files(&root().join("tests/invalid")));
        }
        for path in inputs {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target.run(&data, &scratch));
            assert!(
                outcome.is_ok(),
                "{} failed on {}",
                target.name(),
                path.display()
            );
            replayed += 1;
        }
    }
    for seed in targets::CLI_SEEDS {
        targets::cli_args(seed.as_bytes());
        replayed += 1;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(replayed > 60, "only {replayed} inputs replayed");
}

#[test]
fn the_regressions_are_the_findings_they_were() {
    // The study finding: a control character in an unknown method name used to be echoed.
    let data =
        std::fs::read(root().join("fuzz/regressions/cli/study-method-control-char")).unwrap();
    let sig = targets::cli_args(&data);
    assert!(sig.contains("unknown method"), "{sig}");
}

#[test]
fn the_targets_catch_what_they_check() {
    // Negative controls: the printable check and the seed batch's round trip must be live.
    assert!(std::panic::catch_unwind(|| targets::assert_printable("a \u{1b}[2J b")).is_err());
    assert!(std::panic::catch_unwind(|| targets::assert_printable("x\u{202e}y")).is_err());
    assert!(std::panic::catch_unwind(|| targets::assert_printable("   ")).is_err());
    targets::assert_printable("line one\nline two: état");
    let (b, u) = targets::seed_batch();
    let c = rtb_trustpcl::conventions::classify(&b, &u, 1e-4).unwrap();
    assert!(!c.matches.is_empty(), "the seed batch's results follow RTB");
}
