"""Runs `rtb-trustpcl classify` on plain PyTorch implementations of a few loss conventions.

Usage (outside CI; see docs/classify.md):
    python benches/classify_torch.py target/release/rtb-trustpcl

Each implementation below is written the way a user would write it (autograd for the
gradients), not from the detector's formulas.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch


def load(path):
    d = dict(np.load(path))
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}
    steps = t["log_q"].shape[1]
    t["mask"] = torch.arange(steps)[None, :] < t["lengths"][:, None]
    return d, t


def rtb_half_mean(t, log_q, log_z):  # torchgfn RTB: HalfSquaredLoss, batch mean
    lr = ((log_q - t["log_p"]) * t["mask"]).sum(1)
    delta = log_z + lr - t["beta"] * t["log_r"]
    return 0.5 * delta**2, "mean"


def tb_no_half_mean(t, log_q, log_z):  # squared residual without ½
    lr = ((log_q - t["log_p"]) * t["mask"]).sum(1)
    delta = log_z + lr - t["beta"] * t["log_r"]
    return delta**2, "mean"


def trust_pcl_sum(t, log_q, log_z):  # Trust-PCL from per-step RL terms, V(s0) = α log Z, sum
    alpha = 1.0 / t["beta"]
    rl = (-alpha * log_q + alpha * t["log_p"]) * t["mask"]
    c = -alpha * log_z + rl.sum(1) + t["log_r"]
    return 0.5 * c**2, "sum"


def vargrad_mean(t, log_q, log_z):  # VarGrad: log Z := −mean(rest), detached
    s = ((log_q - t["log_p"]) * t["mask"]).sum(1) - t["beta"] * t["log_r"]
    return 0.5 * (s - s.mean().detach()) ** 2, "mean"


def beta_on_ratio_mean(t, log_q, log_z):  # β on the log-ratio instead of log r
    lr = ((log_q - t["log_p"]) * t["mask"]).sum(1)
    delta = log_z + t["beta"] * lr - t["log_r"]
    return 0.5 * delta**2, "mean"


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/release/rtb-trustpcl"
    tmp = tempfile.mkdtemp()
    batch = os.path.join(tmp, "batch.npz")
    subprocess.run([exe, "export-batch", "--out", batch, "--seed", "0"], check=True)
    for impl in [rtb_half_mean, tb_no_half_mean, trust_pcl_sum, vargrad_mean, beta_on_ratio_mean]:
        d, t = load(batch)
        log_q = t["log_q"].clone().requires_grad_(True)
        log_z = t["log_z"].clone().requires_grad_(True)
        per, red = impl(t, log_q, log_z)
        total = per.mean() if red == "mean" else per.sum()
        total.backward()
        # VarGrad has no log Z: autograd leaves its gradient empty, i.e. 0.
        gz = 0.0 if log_z.grad is None else log_z.grad.item()
        out = os.path.join(tmp, impl.__name__ + ".npz")
        np.savez(
            out,
            **d,
            loss=per.detach().numpy(),
            grad_log_z=np.array(gz),
            grad_log_q=log_q.grad.numpy(),
        )
        print(f"== {impl.__name__}")
        subprocess.run([exe, "classify", "--batch", out])


if __name__ == "__main__":
    main()
