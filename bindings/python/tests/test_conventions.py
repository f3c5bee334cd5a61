"""Plain-PyTorch implementations of each convention are named correctly by check_loss, and
losses that follow none are reported as such (negative controls)."""

import math

import pytest
import torch

import rtb_trustpcl

BETA = 1.5
ALPHA = 1 / BETA


def rtb_residual(log_q, log_p, mask, log_r, beta, log_Z):
    return log_Z + ((log_q - log_p) * mask).sum(1) - beta * log_r


def rtb_half_mean(log_q, log_p, mask, log_r, beta, log_Z):
    """torchgfn / the RTB paper: ½ δ², batch mean."""
    return (0.5 * rtb_residual(log_q, log_p, mask, log_r, beta, log_Z) ** 2).mean()


def tb_sum_no_half(log_q, log_p, lengths, log_r, beta, log_Z):
    """δ² without ½, summed over the batch; takes lengths, not a mask."""
    mask = torch.arange(log_q.shape[1])[None, :] < lengths[:, None]
    return (rtb_residual(log_q, log_p, mask, log_r, beta, log_Z) ** 2).sum()


def trust_pcl(log_q, log_p, lengths, log_r, beta, log_Z):
    """Trust-PCL from its per-step RL terms r_t − α log q_t + α log p_t (γ = 1, the reward on
    the step into the terminal, V(terminal) = 0, V(s0) = α log Z), ½ C², batch mean."""
    alpha = 1 / beta
    steps = log_q.shape[1]
    idx = torch.arange(steps)[None, :]
    mask = (idx < lengths[:, None]).to(log_q.dtype)
    last = (idx == lengths[:, None] - 1).to(log_q.dtype)
    r_t = last * log_r[:, None]
    per_step = (r_t - alpha * log_q + alpha * log_p) * mask
    c = -alpha * log_Z + per_step.sum(1)
    return (0.5 * c**2).mean()


def beta_on_ratio(log_q, log_p, mask, log_r, beta, log_Z):
    d = log_Z + beta * ((log_q - log_p) * mask).sum(1) - log_r
    return (0.5 * d**2).mean()


def vargrad(log_q, log_p, mask, log_r, beta):
    s = ((log_q - log_p) * mask).sum(1) - beta * log_r
    return ((s - s.mean().detach()) ** 2).mean()


def plus_mean(log_q, log_p, mask, log_r, beta):
    s = ((log_q - log_p) * mask).sum(1) - beta * log_r
    # The detector's '+mean' candidate centres with a detached mean (as the script it models).
    return ((s + s.mean().detach()) ** 2).mean()


def per_trajectory(log_q, log_p, mask, log_r, beta, log_Z):
    return 0.5 * rtb_residual(log_q, log_p, mask, log_r, beta, log_Z) ** 2


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "fn, residual, power, half, reduction",
    [
        (rtb_half_mean, "beta-on-log-r", 0, True, "mean"),
        (tb_sum_no_half, "beta-on-log-r", 0, False, "sum"),
        (trust_pcl, "beta-on-log-r", 2, True, "mean"),
        (beta_on_ratio, "beta-on-log-ratio", 0, True, "mean"),
        (vargrad, "var-grad", 0, False, "mean"),
        (plus_mean, "var-grad-plus-mean", 0, False, "mean"),
        (per_trajectory, "beta-on-log-r", 0, True, None),
    ],
)
def test_each_convention_is_named(fn, residual, power, half, reduction, dtype):
    c = rtb_trustpcl.check_loss(fn, dtype=dtype)
    best = c.convention
    assert best is not None, repr(c)
    assert (best.residual, best.alpha_power, best.half, best.reduction) == (
        residual,
        power,
        half,
        reduction,
    ), repr(c)
    assert best.distance <= (1e-12 if dtype == torch.float64 else 1e-4)
    assert best.factor == pytest.approx(1.0, rel=1e-4)
    assert best.name in repr(c)


def test_trust_pcl_is_alpha_squared_times_rtb():
    """The Trust-PCL loss is α² RTB's (C2): against RTB's candidate its factor is α²."""
    c = rtb_trustpcl.check_loss(trust_pcl)
    rtb = next(
        x
        for x in c.candidates
        if (x.residual, x.alpha_power, x.half, x.reduction) == ("beta-on-log-r", 0, True, "mean")
    )
    assert rtb.factor == pytest.approx(ALPHA**2, rel=1e-12)
    assert rtb.distance > 0.1


@pytest.mark.parametrize(
    "fn, factor",
    [
        (lambda log_q, log_p, mask, log_r, beta, log_Z: 1.01 * rtb_half_mean(log_q, log_p, mask, log_r, beta, log_Z), 1.01),
        (lambda log_q, log_p, mask, log_r, beta, log_Z: (rtb_residual(log_q, log_p, mask, log_r, beta, log_Z).abs() ** 3).mean(), None),
        # log Z counted twice: the gradient w.r.t. log Z is off while the shape is RTB-like.
        (lambda log_q, log_p, mask, log_r, beta, log_Z: (0.5 * (rtb_residual(log_q, log_p, mask, log_r, beta, log_Z) + log_Z - log_Z.detach()) ** 2).mean(), None),
    ],
)
def test_non_conventions_match_nothing(fn, factor):
    c = rtb_trustpcl.check_loss(fn)
    assert c.convention is None and not c, repr(c)
    assert "no convention matches" in repr(c)
    if factor is not None:
        assert c.closest.factor == pytest.approx(factor, rel=1e-9)


def test_argument_styles():
    """**kwargs receives everything; log_z is an alias of log_Z; defaults are left alone."""

    def kw(**t):
        return rtb_half_mean(t["log_q"], t["log_p"], t["mask"], t["log_r"], t["beta"], t["log_Z"])

    def alias(log_q, log_p, mask, log_r, beta, log_z, unused=3):
        return rtb_half_mean(log_q, log_p, mask, log_r, beta, log_z)

    for fn in (kw, alias):
        c = rtb_trustpcl.check_loss(fn)
        assert c.convention.residual == "beta-on-log-r" and c.convention.reduction == "mean"


def test_other_batch_parameters():
    """A different seed, size and β still name the convention (nothing is tied to one batch)."""
    c = rtb_trustpcl.check_loss(trust_pcl, seed=7, batch=9, steps=5, beta=0.8, log_z=-0.3)
    assert len(c.matches) == 1, repr(c)
    assert (c.convention.residual, c.convention.alpha_power) == ("beta-on-log-r", 2)


def test_ambiguous_beta_reports_every_match():
    """At β = 0.5 (α = 2), ½·α² = α: the batch cannot tell the two apart, and both are
    reported as matches (the reason export-batch defaults to β = 1.5)."""
    c = rtb_trustpcl.check_loss(trust_pcl, beta=0.5)
    got = {(m.alpha_power, m.half) for m in c.matches}
    assert got == {(1, False), (2, True)}, repr(c)
    assert "also matches" in repr(c)


def test_classify_on_numpy():
    """The numpy half: losses computed outside PyTorch."""
    b = rtb_trustpcl.export_batch(seed=3)
    mask = b["lengths"][:, None] > range(b["log_q"].shape[1])
    d = b["log_z"] + ((b["log_q"] - b["log_p"]) * mask).sum(1) - b["beta"] * b["log_r"]
    c = rtb_trustpcl.classify(b, d**2)
    assert (c.convention.residual, c.convention.half, c.convention.reduction) == ("beta-on-log-r", False, None)
    assert math.isfinite(c.convention.distance)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors():
    c = rtb_trustpcl.check_loss(rtb_half_mean, device="cuda")
    assert c.convention.residual == "beta-on-log-r"
