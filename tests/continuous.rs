//! The continuous experiment on a tiny configuration (seconds): the Euler–Maruyama density,
//! C1/C2 on sampled continuous trajectories against the objectives module, gradients against
//! finite differences, determinism, bad input.
#![cfg(feature = "continuous")]

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rtb_trustpcl::continuous::methods::{
    half_mean_square, rl_corrected_loss, rl_flawed_loss, rtb_residual, trust_pcl_full,
    trust_pcl_step_terms, trust_pcl_windows, Method,
};
use rtb_trustpcl::continuous::network::PisNet;
use rtb_trustpcl::continuous::run::{train, Config};
use rtb_trustpcl::continuous::sde::{exploration_std, Sde};
use rtb_trustpcl::continuous::target::{Mixture, Reward};
use rtb_trustpcl::exact::Rational;
use rtb_trustpcl::objectives::{rtb, trust_pcl};

fn randomise(net: &PisNet, rng: &mut ChaCha8Rng, scale: f64) {
    for v in &net.vars {
        let n = v.elem_count();
        let vals: Vec<f64> = (0..n)
            .map(|_| scale * rtb_trustpcl::continuous::target::normal(rng))
            .collect();
        let t = Tensor::from_vec(vals, v.dims(), &Device::Cpu)
            .unwrap()
            .to_dtype(v.dtype())
            .unwrap();
        v.set(&t).unwrap();
    }
}

fn tiny_nets(seed: u64) -> (Sde, PisNet, PisNet, ChaCha8Rng) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sde = Sde {
        steps: 6,
        sigma2: 5.0,
    };
    let q = PisNet::new(8, 2, DType::F64, &mut rng).unwrap();
    let p = PisNet::new(8, 2, DType::F64, &mut rng).unwrap();
    randomise(&q, &mut rng, 0.5);
    randomise(&p, &mut rng, 0.5);
    (sde, q, p, rng)
}

fn vec2(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

fn vec1(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

/// `max |a − b|` over the entries, in f64.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn em_log_density_equals_direct_gaussian() {
    let (sde, q, _, mut rng) = tiny_nets(1);
    let traj = sde.sample(&q, 3, 0.3, &mut rng).unwrap();
    let states = traj.to_tensor(DType::F64).unwrap();
    let lq = vec2(&sde.step_log_density(&q, &states, false).unwrap().log_q);
    let dt = sde.dt();
    let var = sde.sigma2 * dt;
    for (t, lq_t) in lq.iter().enumerate() {
        let temb = q.time_embedding(&[t as f64 * dt], false).unwrap();
        for (b, row) in lq_t.iter().enumerate() {
            let x = traj.state(t, b);
            let y = traj.state(t + 1, b);
            // The network on this one state alone.
            let xt = Tensor::from_vec(x.to_vec(), (1, 1, 2), &Device::Cpu).unwrap();
            let mu = q
                .forward_grid(&xt, &temb, false)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            // Product of two 1D Gaussian densities N(y_d; x_d + dt·μ_d, σ²·dt).
            let dens: f64 = (0..2)
                .map(|d| {
                    let m = x[d] + dt * mu[d];
                    (-(y[d] - m).powi(2) / (2.0 * var)).exp()
                        / (2.0 * std::f64::consts::PI * var).sqrt()
                })
                .product();
            assert!(
                close(*row, dens.ln(), 1e-10),
                "step {t} traj {b}: {row} vs {}",
                dens.ln()
            );
        }
    }
    // With zero drift the sampler's steps have the stated std √(σ² dt + e²).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let zero = PisNet::new(8, 2, DType::F64, &mut rng).unwrap();
    let big = Sde {
        steps: 100,
        sigma2: 5.0,
    };
    let traj = big.sample(&zero, 400, 0.0, &mut rng).unwrap();
    let end: Vec<f64> = traj.terminals().iter().map(|x| x[0]).collect();
    let var_end = end.iter().map(|v| v * v).sum::<f64>() / end.len() as f64;
    assert!((var_end - 5.0).abs() < 1.0, "terminal variance {var_end}");
}

#[test]
fn c1_c2_hold_on_sampled_continuous_trajectories() {
    let (sde, q, p, mut rng) = tiny_nets(2);
    let reward = Reward::default();
    let batch = 5;
    let traj = sde.sample(&q, batch, 0.5, &mut rng).unwrap();
    let states = traj.to_tensor(DType::F64).unwrap();
    let lq = sde.step_log_density(&q, &states, false).unwrap().log_q;
    let lp = sde.step_log_density(&p, &states, false).unwrap().log_q;
    let log_r_v: Vec<f64> = traj
        .terminals()
        .iter()
        .map(|x| reward.log_reward(*x))
        .collect();
    let log_r = Tensor::from_vec(log_r_v.clone(), batch, &Device::Cpu).unwrap();
    for (beta_num, beta_den) in [(1i64, 1i64), (2, 1), (1, 3)] {
        let beta = beta_num as f64 / beta_den as f64;
        let alpha = 1.0 / beta;
        let log_z = 0.37;
        let z = Tensor::new(log_z, &Device::Cpu).unwrap();
        let v0 = Tensor::new(alpha * log_z, &Device::Cpu).unwrap();
        let delta = vec1(&rtb_residual(&z, &lq, &lp, &log_r, beta).unwrap());
        let terms = trust_pcl_step_terms(&lq, &lp, &log_r, alpha).unwrap();
        let c = vec1(&trust_pcl_full(&v0, &terms).unwrap());
        // The objectives module's definitions, per trajectory, in f64.
        let beta_q = Rational::new(beta_num.into(), beta_den.into());
        let alpha_q = Rational::new(beta_den.into(), beta_num.into());
        let params = trust_pcl::Params::equivalence(&alpha_q);
        let lq2 = vec2(&lq);
        let lp2 = vec2(&lp);
        for b in 0..batch {
            let steps: Vec<f64> = (0..sde.steps)
                .map(|t| {
                    let r = (t + 1 == sde.steps).then_some(log_r_v[b]);
                    rtb::step(
                        &lq2[t][b],
                        &lp2[t][b],
                        r.as_ref(),
                        &beta_q,
                        rtb::BetaPlacement::OnLogReward,
                    )
                })
                .collect();
            let d_ref = rtb::residual(&log_z, &steps);
            let terms_ref: Vec<f64> = (0..sde.steps)
                .map(|t| {
                    let r = if t + 1 == sde.steps { log_r_v[b] } else { 0.0 };
                    trust_pcl::step_term(&r, &lq2[t][b], &lp2[t][b], &params)
                })
                .collect();
            let c_ref = trust_pcl::consistency(&(alpha * log_z), &0.0, &terms_ref, &params);
            assert!(close(delta[b], d_ref, 1e-12), "δ {} vs {d_ref}", delta[b]);
            assert!(close(c[b], c_ref, 1e-12), "C {} vs {c_ref}", c[b]);
            // C1: C = −α δ.
            assert!(close(c[b], -alpha * delta[b], 1e-12), "C1 at β = {beta}");
        }
        // C2: L_TPCL = α² L_RTB, for the batch.
        let l_rtb = half_mean_square(&Tensor::new(delta.clone(), &Device::Cpu).unwrap())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let l_tpcl = half_mean_square(&Tensor::new(c.clone(), &Device::Cpu).unwrap())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            close(l_tpcl, alpha * alpha * l_rtb, 1e-12),
            "C2 at β = {beta}"
        );
    }
}

#[test]
fn windows_match_the_objectives_module_and_telescope() {
    let (sde, q, p, mut rng) = tiny_nets(3);
    let reward = Reward::default();
    let batch = 4;
    let window = 3;
    let traj = sde.sample(&q, batch, 0.0, &mut rng).unwrap();
    let states = traj.to_tensor(DType::F64).unwrap();
    let lq = sde.step_log_density(&q, &states, false).unwrap().log_q;
    let lp = sde.step_log_density(&p, &states, false).unwrap().log_q;
    let log_r_v: Vec<f64> = traj
        .terminals()
        .iter()
        .map(|x| reward.log_reward(*x))
        .collect();
    let log_r = Tensor::from_vec(log_r_v, batch, &Device::Cpu).unwrap();
    let alpha = 0.5;
    let terms = trust_pcl_step_terms(&lq, &lp, &log_r, alpha).unwrap();
    let w = sde.steps / window;
    let v: Vec<f64> = (0..w * batch).map(|i| 0.1 * i as f64 - 0.3).collect();
    let v_start = Tensor::from_vec(v.clone(), (w, batch), &Device::Cpu).unwrap();
    let c = vec2(&trust_pcl_windows(&v_start, &terms, window).unwrap());
    let t2 = vec2(&terms);
    let params = trust_pcl::Params::equivalence(&Rational::new(1.into(), 2.into()));
    for b in 0..batch {
        let mut total = 0.0;
        for k in 0..w {
            let start = v[k * batch + b];
            let end = if k + 1 < w {
                v[(k + 1) * batch + b]
            } else {
                0.0
            };
            let ts: Vec<f64> = (k * window..(k + 1) * window).map(|t| t2[t][b]).collect();
            let r = trust_pcl::consistency(&start, &end, &ts, &params);
            assert!(close(c[k][b], r, 1e-12));
            total += c[k][b];
        }
        // The window consistencies telescope to the full one with V(s0) = v[0].
        let full: f64 = -v[b] + (0..sde.steps).map(|t| t2[t][b]).sum::<f64>();
        assert!(close(total, full, 1e-12));
    }
    assert!(trust_pcl_windows(&v_start, &terms, 4).is_err());
}

/// Sets entry `i` (flat) of `var` to `value`.
fn set_entry(var: &Var, i: usize, value: f64) {
    let mut vals = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    vals[i] = value;
    var.set(
        &Tensor::from_vec(vals, var.dims(), &Device::Cpu)
            .unwrap()
            .to_dtype(var.dtype())
            .unwrap(),
    )
    .unwrap();
}

fn get_entry(var: &Var, i: usize) -> f64 {
    var.as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()[i]
}

#[test]
fn parameter_gradients_match_finite_differences() {
    let (sde, q, p, mut rng) = tiny_nets(4);
    let reward = Reward::default();
    let batch = 4;
    let traj = sde.sample(&q, batch, 0.5, &mut rng).unwrap();
    let states = traj.to_tensor(DType::F64).unwrap();
    let log_r: Vec<f64> = traj
        .terminals()
        .iter()
        .map(|x| reward.log_reward(*x))
        .collect();
    let log_r = Tensor::from_vec(log_r, batch, &Device::Cpu).unwrap();
    let lp = sde.step_log_density(&p, &states, false).unwrap().log_q;
    let log_z = Var::new(0.2f64, &Device::Cpu).unwrap();
    let value = PisNet::new(8, 1, DType::F64, &mut rng).unwrap();
    randomise(&value, &mut rng, 0.5);
    let window = 3;
    type LossFn<'a> = Box<dyn Fn() -> Tensor + 'a>;
    let losses: Vec<(&str, LossFn)> = vec![
        (
            "rtb",
            Box::new(|| {
                let lq = sde.step_log_density(&q, &states, true).unwrap().log_q;
                half_mean_square(&rtb_residual(log_z.as_tensor(), &lq, &lp, &log_r, 1.0).unwrap())
                    .unwrap()
            }),
        ),
        (
            "trust-pcl",
            Box::new(|| {
                let lq = sde.step_log_density(&q, &states, true).unwrap().log_q;
                let terms = trust_pcl_step_terms(&lq, &lp, &log_r, 0.5).unwrap();
                half_mean_square(&trust_pcl_full(log_z.as_tensor(), &terms).unwrap()).unwrap()
            }),
        ),
        (
            "trust-pcl-window",
            Box::new(|| {
                let lq = sde.step_log_density(&q, &states, true).unwrap().log_q;
                let terms = trust_pcl_step_terms(&lq, &lp, &log_r, 1.0).unwrap();
                let idx = Tensor::new(&[0u32, 3], &Device::Cpu).unwrap();
                let xw = states.index_select(&idx, 0).unwrap();
                let dt = sde.dt();
                let temb = value.time_embedding(&[0.0, 3.0 * dt], true).unwrap();
                let v = value
                    .forward_grid(&xw, &temb, true)
                    .unwrap()
                    .squeeze(2)
                    .unwrap();
                let c = trust_pcl_windows(&v, &terms, window).unwrap();
                (c.sqr().unwrap().sum(0).unwrap().mean_all().unwrap() * 0.5).unwrap()
            }),
        ),
        (
            "rl",
            Box::new(|| {
                let lq = sde.step_log_density(&q, &states, true).unwrap().log_q;
                rl_flawed_loss(&lq, &lp, &log_r, 0.01).unwrap()
            }),
        ),
    ];
    for (name, loss_fn) in &losses {
        let grads = loss_fn().backward().unwrap();
        let mut checked = 0;
        let mut vars: Vec<&Var> = q.vars.iter().collect();
        vars.push(&log_z);
        if *name == "trust-pcl-window" {
            vars.extend(value.vars.iter());
        }
        for (k, var) in vars.iter().enumerate() {
            let g = match grads.get(var) {
                Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                None => continue,
            };
            // Two entries per tensor.
            for &i in &[0usize, var.elem_count() / 2] {
                let x0 = get_entry(var, i);
                let h = 1e-5;
                set_entry(var, i, x0 + h);
                let up = loss_fn().to_scalar::<f64>().unwrap();
                set_entry(var, i, x0 - h);
                let down = loss_fn().to_scalar::<f64>().unwrap();
                set_entry(var, i, x0);
                let fd = (up - down) / (2.0 * h);
                assert!(
                    (g[i] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{name}: parameter {k} entry {i}: autograd {} vs finite difference {fd}",
                    g[i]
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "{name}: only {checked} entries checked");
    }
    // REINFORCE surrogate: its gradient is −mean(A ∇Σ log q) with A held constant; its
    // finite difference (A moves with θ) differs, so check the value of the surrogate only.
    let lq = sde.step_log_density(&q, &states, false).unwrap().log_q;
    let s = rl_corrected_loss(&lq, &lp, &log_r, 1.0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(s.is_finite());
}

#[test]
fn every_method_trains_deterministically_on_the_tiny_config() {
    let cfg = Config::tiny();
    let sde = cfg.sde();
    let (prior, losses) =
        rtb_trustpcl::continuous::prior::pretrain(&cfg.prior, &sde, cfg.dtype(), |_, _| {})
            .unwrap();
    assert_eq!(losses.len(), cfg.prior.iterations);
    for m in Method::ALL {
        let a = train(&cfg, &prior, m, 7, |_| {}).unwrap();
        let b = train(&cfg, &prior, m, 7, |_| {}).unwrap();
        assert_eq!(a.iterations, cfg.iterations);
        assert!(a.final_eval.elbo.is_finite(), "{}", m.name());
        assert!(a.final_eval.eubo.is_finite(), "{}", m.name());
        assert_eq!(
            a.final_eval.elbo.to_bits(),
            b.final_eval.elbo.to_bits(),
            "{} not deterministic",
            m.name()
        );
        assert_eq!(
            a.log_z_learned.is_some(),
            m.explores() && m != Method::RlCorrectedOffpolicy
        );
    }
}

#[test]
fn metrics_and_schedule_are_sane() {
    use rtb_trustpcl::continuous::metrics::{energy_distance, lattice_masses, total_variation};
    use rtb_trustpcl::continuous::target::target_lattice_masses;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let t = Mixture::target9();
    let a = t.sample(1500, &mut rng);
    let b = t.sample(1500, &mut rng);
    let prior = Mixture::prior25().sample(1500, &mut rng);
    assert!(total_variation(&lattice_masses(&a), &target_lattice_masses()) < 0.05);
    let floor = energy_distance(&a, &b);
    let far = energy_distance(&a, &prior);
    assert!(far > 20.0 * floor.abs(), "{far} vs {floor}");
    // The log-reward: the posterior is the target, log r ≤ log 25.
    let r = Reward::default();
    for x in [[0.0, 0.0], [5.0, 0.0], [-10.0, 10.0], [30.0, -30.0]] {
        assert!(r.log_reward(x) <= 25f64.ln() + 1e-9);
    }
    assert_eq!(exploration_std(0, 5000, 0.5), 0.5);
    assert_eq!(exploration_std(499, 5000, 0.5), 0.5);
    assert!((exploration_std(2250, 5000, 0.5) - 0.25).abs() < 1e-12);
    assert_eq!(exploration_std(4500, 5000, 0.5), 0.0);
}

#[test]
fn bad_input_is_rejected_with_a_message() {
    let mut cfg = Config::tiny();
    cfg.lr = f64::NAN;
    assert!(cfg.validate().unwrap_err().to_string().contains("lr"));
    let mut cfg = Config::tiny();
    cfg.window = 3;
    assert!(cfg.validate().unwrap_err().to_string().contains("window"));
    assert!(Method::parse("rtbb")
        .unwrap_err()
        .to_string()
        .contains("unknown method"));
    let bin = env!("CARGO_BIN_EXE_rtb-trustpcl");
    for args in [
        vec!["diffusion", "--methods", "nope"],
        vec!["diffusion", "--iterations", "0"],
        vec!["diffusion", "--kappa", "NaN"],
        vec!["diffusion", "--window", "7"],
        vec!["diffusion", "--seeds", "0"],
        vec!["diffusion", "--shards", "0"],
        vec!["diffusion", "--batch", "4", "--shards", "5"],
        vec!["diffusion", "--prior", "/nonexistent/prior.safetensors"],
    ] {
        let out = std::process::Command::new(bin)
            .args(&args)
            .args([
                "--out",
                std::env::temp_dir().join("rtb-cont-bad").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn cli_runs_a_tiny_configuration_with_json() {
    let dir = std::env::temp_dir().join(format!("rtb-cont-cli-{}", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_rtb-trustpcl");
    let out = std::process::Command::new(bin)
        .args([
            "diffusion",
            "--steps",
            "10",
            "--hidden",
            "8",
            "--batch",
            "8",
            "--iterations",
            "2",
            "--prior-iterations",
            "2",
            "--eval-samples",
            "32",
            "--window",
            "5",
            "--seeds",
            "1",
            "--methods",
            "rtb,trust-pcl",
            "--json",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"].as_array().unwrap().len(), 2);
    assert!(dir.join("results.json").is_file());
    assert!(dir.join("table.md").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fast_f32_erf_is_accurate() {
    use rtb_trustpcl::continuous::gelu::erf32;
    // Simpson quadrature of 2/√π ∫_0^x e^{−t²} dt.
    let erf = |x: f64| {
        let n = 4000;
        let h = x / n as f64;
        let mut s = 0.0;
        for i in 0..=n {
            let t = i as f64 * h;
            let w = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            s += w * (-t * t).exp();
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    };
    let mut x = -6.0f64;
    while x < 6.0 {
        let e = (erf32(x as f32) as f64 - erf(x)).abs();
        assert!(e < 5e-7, "erf32({x}) off by {e}");
        x += 0.013;
    }
}

#[test]
fn fused_gelu_matches_candle_gelu_erf() {
    use rtb_trustpcl::continuous::gelu::{bias_gelu, gelu};
    let xs: Vec<f64> = (0..64).map(|i| (i as f64 - 32.0) * 0.17).collect();
    let x = Tensor::from_vec(xs, (8, 8), &Device::Cpu).unwrap();
    let b = Tensor::from_vec(
        (0..8).map(|i| i as f64 * 0.1).collect::<Vec<_>>(),
        8,
        &Device::Cpu,
    )
    .unwrap();
    let reference = x.broadcast_add(&b).unwrap().gelu_erf().unwrap();
    let fused = bias_gelu(&x, &b).unwrap();
    let diff = max_abs_diff(&reference, &fused);
    assert!(diff < 1e-12, "{diff}");
    let plain = gelu(&x.broadcast_add(&b).unwrap()).unwrap();
    let diff = max_abs_diff(&reference, &plain);
    assert!(diff < 1e-12, "{diff}");
    let x32 = x.to_dtype(DType::F32).unwrap();
    let b32 = b.to_dtype(DType::F32).unwrap();
    let diff = max_abs_diff(
        &x32.broadcast_add(&b32).unwrap().gelu_erf().unwrap(),
        &bias_gelu(&x32, &b32).unwrap(),
    );
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn weights_round_trip_and_bad_checkpoints_are_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let a = PisNet::new(8, 2, DType::F32, &mut rng).unwrap();
    randomise(&a, &mut rng, 0.3);
    let dir = std::env::temp_dir().join(format!("rtb-cont-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    a.save(&path).unwrap();
    let b = PisNet::new(8, 2, DType::F32, &mut rng).unwrap();
    b.load(&path).unwrap();
    assert_eq!(a.flat_params().unwrap(), b.flat_params().unwrap());
    // A width mismatch and a file that is not a PyTorch checkpoint: clear errors.
    let c = PisNet::new(16, 2, DType::F32, &mut rng).unwrap();
    assert!(c.load(&path).unwrap_err().to_string().contains("shape"));
    let junk = dir.join("prior.pt");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    assert!(c
        .load_torch(&junk)
        .unwrap_err()
        .to_string()
        .contains("invalid input"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sharded_gradients_equal_the_whole_batch_gradient_for_every_method() {
    use rtb_trustpcl::continuous::run::{shard_gradients, Learner};
    let cfg = Config::tiny();
    let sde = cfg.sde();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let prior = PisNet::new(cfg.hidden, 2, DType::F64, &mut rng).unwrap();
    randomise(&prior, &mut rng, 0.3);
    let reward = Reward::default();
    let expl = 0.3;
    for m in Method::ALL {
        let learner = Learner::new(&cfg, &prior, m, &mut rng).unwrap();
        // A policy away from the prior, a non-zero scalar and value network.
        randomise(&learner.policy, &mut rng, 0.3);
        learner
            .scalar
            .set(&Tensor::new(0.7f64, &Device::Cpu).unwrap())
            .unwrap();
        if let Some(v) = &learner.value {
            randomise(v, &mut rng, 0.3);
        }
        let whole = sde
            .sample(&learner.policy, cfg.batch, expl, &mut rng)
            .unwrap();
        let parts = [whole.columns(0, 7), whole.columns(7, cfg.batch - 7)];
        let a = shard_gradients(&cfg, &learner, &prior, &reward, m, expl, &[whole]).unwrap();
        let b = shard_gradients(&cfg, &learner, &prior, &reward, m, expl, &parts).unwrap();
        assert!(close(a.loss, b.loss, 1e-12), "{}: loss", m.name());
        assert!(close(a.kl_div, b.kl_div, 1e-12), "{}: kl_div", m.name());
        let mut vars: Vec<&Var> = learner.policy.vars.iter().collect();
        vars.push(&learner.scalar);
        if let Some(v) = &learner.value {
            vars.extend(v.vars.iter());
        }
        let mut compared = 0;
        for (k, var) in vars.iter().enumerate() {
            let (ga, gb) = match (a.grads.get(var), b.grads.get(var)) {
                (Some(x), Some(y)) => (
                    vec1(&x.flatten_all().unwrap()),
                    vec1(&y.flatten_all().unwrap()),
                ),
                (None, None) => continue,
                _ => panic!(
                    "{}: parameter {k} has a gradient on one path only",
                    m.name()
                ),
            };
            let scale = ga.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
            for (x, y) in ga.iter().zip(&gb) {
                assert!(
                    (x - y).abs() <= 1e-11 * (1.0 + scale),
                    "{}: parameter {k}: whole {x} vs sharded {y}",
                    m.name()
                );
            }
            compared += 1;
        }
        // The policy's 13 tensors at least (the last layer's too: it is randomised here).
        assert!(
            compared >= 13,
            "{}: {compared} gradients compared",
            m.name()
        );
    }
}

#[test]
fn fused_first_layer_matches_the_composition_and_finite_differences() {
    use rtb_trustpcl::continuous::gelu::{first_layer, gelu};
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let (nt, b, d, h) = (3usize, 5usize, 2usize, 7usize);
    let mut draw = |n: usize, s: f64| -> Vec<f64> {
        (0..n)
            .map(|_| s * rtb_trustpcl::continuous::target::normal(&mut rng))
            .collect()
    };
    let x = Var::from_tensor(
        &Tensor::from_vec(draw(nt * b * d, 1.5), (nt, b, d), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let w = Var::from_tensor(&Tensor::from_vec(draw(d * h, 0.8), (d, h), &Device::Cpu).unwrap())
        .unwrap();
    let e = Var::from_tensor(&Tensor::from_vec(draw(nt * h, 0.8), (nt, h), &Device::Cpu).unwrap())
        .unwrap();
    let weights = Tensor::from_vec(draw(nt * b * h, 1.0), (nt * b, h), &Device::Cpu).unwrap();
    // A scalar of the output, fused and composed from candle ops (GELU's exact derivative).
    let fused = || {
        (first_layer(x.as_tensor(), w.as_tensor(), e.as_tensor()).unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let composed = || {
        let s = x
            .as_tensor()
            .reshape((nt * b, d))
            .unwrap()
            .matmul(w.as_tensor())
            .unwrap();
        let pre = s
            .reshape((nt, b, h))
            .unwrap()
            .broadcast_add(&e.as_tensor().unsqueeze(1).unwrap())
            .unwrap()
            .reshape((nt * b, h))
            .unwrap();
        (gelu(&pre).unwrap() * &weights).unwrap().sum_all().unwrap()
    };
    let (f, c) = (fused(), composed());
    let fv = f.to_scalar::<f64>().unwrap();
    assert!(close(fv, c.to_scalar::<f64>().unwrap(), 1e-13));
    let gf = f.backward().unwrap();
    let gc = c.backward().unwrap();
    for (name, var) in [("x", &x), ("W", &w), ("e", &e)] {
        let a = vec1(&gf.get(var).unwrap().flatten_all().unwrap());
        let bb = vec1(&gc.get(var).unwrap().flatten_all().unwrap());
        for (i, (p, q)) in a.iter().zip(&bb).enumerate() {
            assert!(
                close(*p, *q, 1e-12),
                "d{name}[{i}]: fused {p} vs composed {q}"
            );
        }
        // Central finite differences on three entries.
        for &i in &[0usize, a.len() / 2, a.len() - 1] {
            let mut vals = vec1(&var.as_tensor().flatten_all().unwrap());
            let x0 = vals[i];
            let step = 1e-6;
            let mut at = |v: f64| {
                vals[i] = v;
                var.set(&Tensor::from_vec(vals.clone(), var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                fused().to_scalar::<f64>().unwrap()
            };
            let fd = (at(x0 + step) - at(x0 - step)) / (2.0 * step);
            at(x0);
            assert!(
                close(a[i], fd, 1e-7),
                "d{name}[{i}]: {} vs finite difference {fd}",
                a[i]
            );
        }
    }
    // f32: the fused op agrees with the f64 one within f32 rounding.
    let f32v = max_abs_diff(
        &first_layer(
            &x.as_tensor().to_dtype(DType::F32).unwrap(),
            &w.as_tensor().to_dtype(DType::F32).unwrap(),
            &e.as_tensor().to_dtype(DType::F32).unwrap(),
        )
        .unwrap(),
        &first_layer(x.as_tensor(), w.as_tensor(), e.as_tensor()).unwrap(),
    );
    assert!(f32v < 1e-5, "f32 first layer off by {f32v}");
    // Mismatched operands are errors, not panics.
    let bad = Tensor::zeros((nt + 1, h), DType::F64, &Device::Cpu).unwrap();
    assert!(first_layer(x.as_tensor(), w.as_tensor(), &bad).is_err());
}

#[test]
fn fused_bias_gelu_gradients_match_the_composition() {
    use rtb_trustpcl::continuous::gelu::{bias_gelu, gelu};
    let mut rng = ChaCha8Rng::seed_from_u64(34);
    let (n, h) = (300usize, 9usize);
    let mut draw = |k: usize| -> Vec<f64> {
        (0..k)
            .map(|_| 2.0 * rtb_trustpcl::continuous::target::normal(&mut rng))
            .collect()
    };
    let x =
        Var::from_tensor(&Tensor::from_vec(draw(n * h), (n, h), &Device::Cpu).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::from_vec(draw(h), h, &Device::Cpu).unwrap()).unwrap();
    let wts = Tensor::from_vec(draw(n * h), (n, h), &Device::Cpu).unwrap();
    let f = (bias_gelu(x.as_tensor(), b.as_tensor()).unwrap() * &wts)
        .unwrap()
        .sum_all()
        .unwrap();
    let c = (gelu(&x.as_tensor().broadcast_add(b.as_tensor()).unwrap()).unwrap() * &wts)
        .unwrap()
        .sum_all()
        .unwrap();
    let (gf, gc) = (f.backward().unwrap(), c.backward().unwrap());
    for var in [&x, &b] {
        let p = vec1(&gf.get(var).unwrap().flatten_all().unwrap());
        let q = vec1(&gc.get(var).unwrap().flatten_all().unwrap());
        assert_eq!(p.len(), q.len());
        for (u, v) in p.iter().zip(&q) {
            assert!(close(*u, *v, 1e-12), "{u} vs {v}");
        }
    }
}

#[test]
fn fast_f32_exp_is_accurate() {
    use rtb_trustpcl::continuous::gelu::exp32_nonpositive;
    let mut x = -90.0f32;
    let mut worst = 0.0f64;
    while x <= 0.0 {
        let exact = (x as f64).exp();
        let got = exp32_nonpositive(x) as f64;
        if exact > 1e-37 {
            worst = worst.max((got - exact).abs() / exact);
        } else {
            assert!(got.abs() < 1e-36, "exp({x}) = {got}");
        }
        x += 0.0137;
    }
    // Two ulp of f32.
    assert!(worst < 2.5e-7, "relative error {worst}");
}
