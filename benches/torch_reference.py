#!/usr/bin/env python3
"""PyTorch CPU reference for the RTB and Trust-PCL loss + gradient w.r.t. the per-step log q.

Same shapes and layout as `rtb-trustpcl bench` ([B, T] row-major, f32), timed the same way
(median of K runs after warm-up), in eager autograd and with torch.compile (inductor). With
--ours PATH it also runs `PATH bench --json` in the same process tree and prints our ratio to
each. Set-up: see docs/performance.md (a venv with `pip install torch`; not part of CI).
"""
import argparse
import json
import subprocess
import time

import torch


def rtb_loss(log_q, log_p, mask, log_r, log_z, beta):
    delta = log_z + ((log_q - log_p) * mask).sum(1) - beta * log_r
    return 0.5 * (delta * delta).mean()


def tpcl_loss(log_q, log_p, mask, last, log_r, v0, alpha):
    # Per-step RL terms r_t - alpha log q + alpha log p, reward on the last live step.
    step = (alpha * log_p - alpha * log_q) * mask + last * log_r[:, None]
    c = -v0 + step.sum(1)
    return 0.5 * (c * c).mean()


def median_seconds(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--ours", help="path to the rtb-trustpcl binary, to print ratios")
    args = ap.parse_args()
    b, t = args.batch, args.steps
    g = torch.Generator().manual_seed(0)
    log_q = torch.rand(b, t, generator=g).clamp_min(1e-6).log().requires_grad_(True)
    log_p = torch.rand(b, t, generator=g).clamp_min(1e-6).log()
    lengths = torch.full((b,), t)
    steps = torch.arange(t)[None, :]
    mask = (steps < lengths[:, None]).float()
    last = (steps == (lengths[:, None] - 1)).float()
    log_r = torch.randn(b, generator=g)
    beta = 1.5
    log_z = torch.tensor(0.3)
    v0 = log_z / beta

    def make(loss_fn):
        def run_rtb():
            loss = loss_fn(log_q, log_p, mask, log_r, log_z, beta)
            (grad,) = torch.autograd.grad(loss, log_q)
            return loss, grad
        return run_rtb

    def make_tpcl(loss_fn):
        def run_tpcl():
            loss = loss_fn(log_q, log_p, mask, last, log_r, v0, 1.0 / beta)
            (grad,) = torch.autograd.grad(loss, log_q)
            return loss, grad
        return run_tpcl

    results = {}
    results[("rtb", "eager")] = median_seconds(make(rtb_loss), args.repeats)
    results[("tpcl", "eager")] = median_seconds(make_tpcl(tpcl_loss), args.repeats)
    try:
        crtb = torch.compile(rtb_loss)
        ctpcl = torch.compile(tpcl_loss)
        results[("rtb", "compile")] = median_seconds(make(crtb), args.repeats)
        results[("tpcl", "compile")] = median_seconds(make_tpcl(ctpcl), args.repeats)
    except Exception as e:  # inductor needs a C++ compiler
        print(f"torch.compile unavailable: {e}")
    # Bytes a fused kernel must move (dense gradient): read log q, log p, write the gradient.
    nbytes = 3 * b * t * 4
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={b}, T={t}, f32")
    for (k, mode), s in results.items():
        print(f"  {k:5s} {mode:8s} {s * 1e3:9.3f} ms  {nbytes / s / 1e9:7.2f} GB/s (dense-gradient bytes)")
    if args.ours:
        out = subprocess.run(
            [args.ours, "bench", "--batch", str(b), "--steps", str(t), "--dtype", "f32",
             "--repeats", str(args.repeats), "--json"],
            check=True, capture_output=True, text=True).stdout
        ours = {(m["name"], m["form"]): m["median_seconds"] for m in json.loads(out)["runs"][0]["measurements"]}
        print(f"  ours: copy reference {ours[('copy', 'reference')] * 1e3:.3f} ms")
        for k in ("rtb", "tpcl"):
            for form in ("dense", "per-trajectory"):
                s = ours[(k, form)]
                line = f"  ours {k:5s} {form:15s} {s * 1e3:8.3f} ms"
                for mode in ("eager", "compile"):
                    if (k, mode) in results:
                        line += f"  {results[(k, mode)] / s:6.2f}x vs {mode}"
                print(line)


if __name__ == "__main__":
    main()
