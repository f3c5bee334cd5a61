#!/usr/bin/env python3
"""Time per training iteration of the paper's PyTorch code beside `rtb-trustpcl diffusion`.

The paper's code (the `rtb_diffusion` folder of the RTB-is-Trust-PCL repository, adapted from
GFNOrg/diffusion-finetuning) is imported from a checkout given with `--repo`; nothing of it is
copied here. One iteration is exactly their `train_step` of `finetune_posterior.py`: sample a
batch of 100-step trajectories with `GFN.get_trajectory_fwd` (one network call per step),
score them under the frozen prior with `get_trajectory_fwd_off` (one call per step), the loss
of `gflownet_losses.py`, `backward`, Adam. The weights do not change the cost, so the model is
the freshly initialised one (their `pretrained/prior.pt` is loaded when present).

Both wall time and CPU time (all threads) per iteration are reported: on a shared machine
the CPU time is the load-independent measure. Then, in the same run, the Rust implementation is timed on the same machine with the same
threads (`--rust-bin`, default target/release/rtb-trustpcl). Not run in CI.

    pip install torch einops matplotlib pillow numpy
    python3 benches/diffusion_reference.py --repo PATH/rtb_diffusion --iters 20 --threads 2
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time


def load_avg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def time_torch(repo, methods, batch, iters, warmup, threads):
    sys.path.insert(0, repo)
    os.chdir(repo)
    import torch
    torch.set_num_threads(threads)
    from models import GFN
    from utils import get_gfn_optimizer, get_exploration_std, get_finetuning_loss
    from energies import TwentyFiveGaussianMixture, Posterior2DGaussianMixture

    device = torch.device("cpu")
    energy = Posterior2DGaussianMixture(device=device)
    rows = []
    for method in methods:
        torch.manual_seed(12345)
        gfn = GFN(2, 64, 64, 64, 64, trajectory_length=100, clipping=True, lgv_clip=1e2,
                  gfn_clip=1e4, langevin=False, learned_variance=False, partial_energy=False,
                  log_var_range=4., pb_scale_range=0.1, t_scale=5.0,
                  langevin_scaling_per_dimension=False, conditional_flow_model=False,
                  learn_pb=False, pis_architectures=True, lgv_layers=3, joint_layers=2,
                  zero_init=True, device=device).to(device)
        opt = get_gfn_optimizer(gfn, 1e-3, 0.1, 1e-3, False, False, False, False)
        ckpt = os.path.join(repo, "pretrained", "prior.pt")
        if os.path.isfile(ckpt):
            state = torch.load(ckpt, map_location="cpu")
            gfn.load_state_dict(state.get("model_state_dict", state))
        prior = copy.deepcopy(gfn)
        prior.eval()
        name = method.replace("-", "_")
        explore = {"rtb": (True, 0.5, True), "rl": (False, 0.0, False),
                   "rl_corrected": (False, 0.0, False),
                   "rl_corrected_offpolicy": (True, 0.5, True)}[name]
        times = []
        cpu = []
        for it in range(warmup + iters):
            start = time.perf_counter()
            cpu_start = time.process_time()
            gfn.zero_grad()
            expl = get_exploration_std(it, *explore)
            init = torch.zeros(batch, 2)
            out = get_finetuning_loss(name, init, prior, gfn, energy.log_reward,
                                      beta=1.0, exploration_std=expl)
            if name == "rl":
                loss = (out[0] + 0.01 * out[1]).mean()
            else:
                loss = out[0]
            loss.backward()
            opt.step()
            if it >= warmup:
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
        rows.append({"impl": "pytorch (paper)", "method": method,
                     "s_per_iter": sum(times) / len(times),
                     "cpu_s_per_iter": sum(cpu) / len(cpu), "load": load_avg()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def time_rust(binary, methods, batch, iters, threads):
    rows = []
    for method in methods:
        out = tempfile.mkdtemp(prefix="rtb-diffusion-bench-")
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        # The prior is trained a few iterations only: the cost of an iteration does not
        # depend on the weights.
        cmd = [binary, "diffusion", "--methods", method, "--seeds", "1", "--iterations",
               str(iters), "--batch", str(batch), "--prior-iterations", "5",
               "--eval-every", "0", "--eval-samples", "100", "--json", "--out", out]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            continue
        with open(os.path.join(out, "results.json")) as f:
            data = json.load(f)
        run = data["runs"][0]
        rows.append({"impl": "rust (candle)", "method": method,
                     "s_per_iter": run["seconds_per_iteration"],
                     "cpu_s_per_iter": run["cpu_seconds_per_iteration"] or float("nan"),
                     "load": load_avg()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", help="path to the paper's rtb_diffusion folder")
    ap.add_argument("--rust-bin", default="target/release/rtb-trustpcl")
    ap.add_argument("--methods", default="rtb,rl,rl-corrected,rl-corrected-offpolicy")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rust_bin = os.path.abspath(args.rust_bin)
    rows = []
    if os.path.isfile(rust_bin):
        rows += time_rust(rust_bin, methods, args.batch, args.iters, args.threads)
    else:
        print(f"no Rust binary at {rust_bin}: build with cargo build --release", file=sys.stderr)
    if args.repo:
        rows += time_torch(os.path.abspath(args.repo), methods, args.batch, args.iters,
                           args.warmup, args.threads)
    print("| implementation | method | s/iteration (wall) | CPU s/iteration | load (1 min) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['method']} | {r['s_per_iter']:.3f} | "
              f"{r['cpu_s_per_iter']:.3f} | {r['load']:.2f} |")


if __name__ == "__main__":
    main()
