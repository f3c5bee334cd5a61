//! The empirical study: exactness of the construction and of the metric DP on a small instance
//! (enumeration), and the `--quick` study end to end (schema, outputs, and that RTB, Trust-PCL
//! and REINFORCE-KL beat the flawed baseline's KL by a clear margin).
use rtb_trustpcl::kernels::TabularSoftmax;
use rtb_trustpcl::study::diffusion::{DiffusionDag, DiffusionSpec};
use rtb_trustpcl::study::grid::{Grid, Mixture};
use rtb_trustpcl::study::metrics::{enumerate, occupancy, Reference};
use serde_json::Value;
use std::process::Command;

/// The same construction as the study, coarse enough to enumerate: 9×9 cells of 2.5 on
/// [−10, 10]², 3 denoising steps, 3×3 stencil (81 · 9³ ≤ 59 049 trajectories).
fn small() -> DiffusionDag {
    DiffusionDag::new(DiffusionSpec {
        half_width: 10.0,
        cell: 2.5,
        steps: 3,
        radius: 1,
    })
    .unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn prior(dag: &DiffusionDag) -> Vec<f64> {
    dag.log_p().iter().map(|l| l.exp()).collect()
}

#[test]
fn prior_marginal_is_the_discretized_25_mode_mixture() {
    for dag in [
        small(),
        DiffusionDag::new(DiffusionSpec {
            half_width: 12.0,
            cell: 0.75,
            steps: 8,
            radius: 1,
        })
        .unwrap(),
    ] {
        let (pmf, _) = Grid::new(dag.spec().half_width, dag.spec().cell)
            .unwrap()
            .discretize(&Mixture::prior25());
        let occ = occupancy(&dag, &prior(&dag)).unwrap();
        // Rounding: a few ulps per layer of a sum of ≤ 9 products.
        assert!(max_diff(&occ.terminal, &pmf) < 1e-15, "{:?}", dag.spec());
        // Every intermediate layer's marginal is the noising walk's.
        for layer in 1..=dag.steps() {
            let level = dag.steps() - layer + 1;
            let n = dag.cells();
            let at: Vec<f64> = (0..n)
                .map(|c| occ.states[dag.state(layer, c).unwrap()])
                .collect();
            assert!(max_diff(&at, &dag.noisy_marginals()[level]) < 1e-15);
        }
    }
}

#[test]
fn target_marginal_is_the_discretized_9_mode_mixture() {
    let dag = small();
    let reference = Reference::new(&dag);
    let (pmf, _) = Grid::new(10.0, 2.5)
        .unwrap()
        .discretize(&Mixture::target9());
    // By backward induction (q*) and by enumeration (p(τ) r(x) / Z, from p and r only).
    let occ = occupancy(&dag, &reference.q_star).unwrap();
    assert!(max_diff(&occ.terminal, &pmf) < 1e-13);
    let en = enumerate(&dag, &prior(&dag), 100_000).unwrap();
    assert!(max_diff(&en.target_terminal, &pmf) < 1e-13);
    assert!((en.z.ln() - reference.log_z_star).abs() < 1e-12);
    // At q*: J(q*) = α log Z*, so the gap is zero (C5), and the marginal metrics vanish.
    let m = reference.metrics(&dag, &reference.q_star).unwrap();
    assert!(m.j_gap.abs() < 1e-10, "{}", m.j_gap);
    assert!(m.kl_target_to_model.abs() < 1e-12 && m.tv < 1e-12);
}

#[test]
fn metric_dp_matches_enumeration() {
    let dag = small();
    let reference = Reference::new(&dag);
    // The prior, q*, and a random policy.
    let mut logits: Vec<f64> = dag.log_p().to_vec();
    let mut x = 0.123_f64;
    for l in &mut logits {
        x = (x * 9301.0 + 49297.0) % 233280.0 / 233280.0;
        *l += 3.0 * (x - 0.5);
    }
    let random = TabularSoftmax::from_logits(dag.offsets().to_vec(), &logits)
        .unwrap()
        .probabilities()
        .to_vec();
    for probs in [prior(&dag), reference.q_star.clone(), random] {
        let en = enumerate(&dag, &probs, 100_000).unwrap();
        assert_eq!(en.trajectories, walks(&dag));
        let dp = reference.metrics(&dag, &probs).unwrap();
        let by_enum = reference.from_parts(&en.terminal, en.expected_log_r, en.kl_trajectory);
        let occ = occupancy(&dag, &probs).unwrap();
        assert!(max_diff(&occ.terminal, &en.terminal) < 1e-14);
        for (a, b) in dp.scalars().iter().zip(by_enum.scalars()) {
            assert!((a - b).abs() <= 1e-11 * (1.0 + b.abs()), "{a} vs {b}");
        }
        assert!((dp.j - by_enum.j).abs() <= 1e-11 * (1.0 + dp.j.abs()));
        assert!(dp.j_gap >= -1e-12, "J gap {} < 0", dp.j_gap);
    }
    assert!(enumerate(&dag, &prior(&dag), 1000).is_err());
    assert!(reference.metrics(&dag, &[0.5]).is_err());
}

/// The number of trajectories, counted independently of the DAG's edge lists from the stencil
/// geometry: a source choice, then `K` steps inside the 3×3 box cut at the grid's border.
fn walks(dag: &DiffusionDag) -> u64 {
    let side = dag.grid().side() as i64;
    let n = dag.cells() as i64;
    // paths(c, k): number of k-step walks from cell c staying on the grid (3×3 box).
    let mut paths = vec![1u64; n as usize];
    for _ in 0..dag.steps() {
        let next: Vec<u64> = (0..n)
            .map(|c| {
                let (i, j) = (c / side, c % side);
                let mut s = 0;
                for a in -1..=1 {
                    for b in -1..=1 {
                        let (x, y) = (i + a, j + b);
                        if (0..side).contains(&x) && (0..side).contains(&y) {
                            s += paths[(x * side + y) as usize];
                        }
                    }
                }
                s
            })
            .collect();
        paths = next;
    }
    paths.iter().sum::<u64>()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rtb-study-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn quick_study_end_to_end() {
    let out = temp_dir("quick");
    let run = Command::new(env!("CARGO_BIN_EXE_rtb-trustpcl"))
        .args(["study", "--quick", "--json", "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let v: Value = serde_json::from_slice(&run.stdout).expect("JSON on stdout");
    assert_eq!(v["target_modes"], 9);
    assert!(v["terminal_cells"].as_u64().unwrap() >= 1000);
    let obj = v.as_object().unwrap();
    assert_eq!(
        obj.len(),
        3,
        "exactly methods, target_modes, terminal_cells"
    );
    let methods = v["methods"].as_array().unwrap();
    let names: Vec<&str> = methods
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rtb",
            "rtb-offpolicy",
            "tpcl",
            "tpcl-windowed",
            "reinforce-kl",
            "reinforce-kl-offpolicy",
            "flawed-baseline"
        ]
    );
    let kl = |name: &str| {
        let m = methods.iter().find(|m| m["name"] == name).unwrap();
        assert_eq!(m.as_object().unwrap().len(), 7, "{m}");
        assert!(m["seeds"].as_u64().unwrap() >= 2);
        for key in [
            "kl_target_to_model",
            "kl_model_to_target",
            "tv",
            "mode_mass_error",
            "j_gap",
        ] {
            assert!(m[key]["mean"].as_f64().unwrap().is_finite(), "{name} {key}");
            assert!(m[key]["std"].as_f64().unwrap() >= 0.0, "{name} {key}");
        }
        m["kl_target_to_model"]["mean"].as_f64().unwrap()
    };
    let flawed = kl("flawed-baseline");
    for name in ["rtb", "tpcl", "reinforce-kl"] {
        let k = kl(name);
        assert!(
            k < 0.5 * flawed,
            "{name}: KL(target‖q) = {k} is not clearly below the flawed baseline's {flawed}"
        );
    }
    // At β = 1 Trust-PCL's update is RTB's (C3 with α = 1): the same seeds give the same run.
    let (r, t) = (kl("rtb"), kl("tpcl"));
    assert!((r - t).abs() <= 1e-9 * r.abs(), "rtb {r} vs tpcl {t}");
    // results.json and the pictures.
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let env = &results["environment"];
    assert!(env["prior_marginal_error"].as_f64().unwrap() < 1e-14);
    assert!(env["target_marginal_error"].as_f64().unwrap() < 1e-12);
    assert!(
        results["methods"][0]["curves"]["iteration"]
            .as_array()
            .unwrap()
            .len()
            > 2
    );
    if !stderr.contains("pictures skipped") {
        for f in ["marginals.png", "marginals.svg", "curves.png", "curves.svg"] {
            assert!(out.join(f).exists(), "{f}");
        }
        for name in names.iter().chain(&["prior", "target"]) {
            assert!(out.join(format!("heatmap-{name}.png")).exists());
            assert!(out.join(format!("heatmap-{name}.svg")).exists());
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_arguments_exit_2() {
    let out = temp_dir("bad");
    for args in [
        vec!["--methods", "rtb,nonsense"],
        vec!["--seeds", "0"],
        vec!["--iterations", "0"],
        vec!["--lr", "-1"],
        vec!["--radius", "0"],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_rtb-trustpcl"))
            .arg("study")
            .args(&args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&run.stderr).is_empty());
    }
    let _ = std::fs::remove_dir_all(&out);
}
