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

/// Every `.rs` file under `dir`, recursively.
fn sources_deep(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources_deep(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push((
                path.display().to_string(),
                fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

/// The crate modules a line of code refers to (`crate::NAME`), doc comments excluded.
fn crate_refs(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for line in code_lines(text) {
        let mut rest = line;
        while let Some(k) = rest.find("crate::") {
            rest = &rest[k + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::x, b}`: the first segment of each item on the line.
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        out.insert(name.to_string());
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// The layering: which top-level modules each module's code may use. The table is acyclic
/// (checked below), so no circular import between modules is possible.
const LAYERS: &[(&str, &[&str])] = &[
    ("exact", &[]),
    ("mutant", &[]),
    ("input", &[]),
    ("progress", &[]),
    ("dag", &["exact", "input"]),
    ("objectives", &["exact", "dag", "mutant", "input"]),
    ("claims", &["exact", "dag", "objectives", "mutant"]),
    ("expect", &["exact", "dag", "objectives"]),
    (
        "kernels",
        &["exact", "objectives", "mutant", "input", "progress"],
    ),
    (
        "agreement",
        &[
            "exact",
            "dag",
            "expect",
            "objectives",
            "kernels",
            "mutant",
            "input",
            "progress",
        ],
    ),
    (
        "conventions",
        &["exact", "objectives", "kernels", "mutant", "input"],
    ),
    ("coq", &["exact", "dag", "objectives", "claims", "mutant"]),
    (
        "study",
        &[
            "exact",
            "dag",
            "objectives",
            "claims",
            "kernels",
            "progress",
        ],
    ),
    (
        "continuous",
        &["exact", "objectives", "kernels", "mutant", "input", "study"],
    ),
];

#[test]
fn every_module_keeps_its_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (module, allowed) in LAYERS {
        let mut files = Vec::new();
        let dir = root.join(module);
        if dir.is_dir() {
            sources_deep(&dir, &mut files);
        } else {
            let f = root.join(format!("{module}.rs"));
            files.push((f.display().to_string(), fs::read_to_string(&f).unwrap()));
        }
        for (file, text) in files {
            for used in crate_refs(&text) {
                assert!(
                    used == *module || allowed.contains(&used.as_str()),
                    "{file} uses crate::{used}, outside the layer of `{module}` ({allowed:?})"
                );
            }
        }
    }
}

#[test]
fn the_layers_are_acyclic_and_files_import_no_cycle() {
    // Modules: a topological order exists (each module's allowed set precedes it).
    let mut placed: Vec<&str> = Vec::new();
    for (module, allowed) in LAYERS {
        for a in *allowed {
            assert!(
                placed.contains(a),
                "{module} may use {a}, which comes later"
            );
        }
        placed.push(module);
    }
    // Files inside each float-path module: no file imports one that imports it back.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for module in [
        "kernels",
        "agreement",
        "conventions",
        "objectives",
        "claims",
    ] {
        let files = sources(&format!("src/{module}"));
        let stem = |f: &str| {
            Path::new(f)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string()
        };
        let names: Vec<String> = files.iter().map(|(f, _)| stem(f)).collect();
        let uses = |text: &str, other: &str| {
            code_lines(text).any(|l| {
                l.contains(&format!("super::{other}::"))
                    || l.contains(&format!("crate::{module}::{other}::"))
                    || l.contains(&format!("super::{other}::{{"))
            })
        };
        for (fa, ta) in &files {
            for (fb, tb) in &files {
                let (a, b) = (stem(fa), stem(fb));
                if a != b && a != "mod" && b != "mod" && uses(ta, &b) && uses(tb, &a) {
                    panic!("circular import in src/{module}: {a} <-> {b}");
                }
            }
        }
        assert!(!names.is_empty(), "{}", root.display());
    }
}
