"""The fused kernels (rtb_trustpcl.losses) equal a PyTorch autograd reference: loss, residual
and the gradients, on numpy arrays and torch tensors, in float32 and float64. Each reference is
written from the objective's definition (Trust-PCL from its per-step RL terms); a deliberately
wrong reference must disagree (negative control)."""

import numpy as np
import pytest
import torch

import rtb_trustpcl
from rtb_trustpcl import losses

KAPPA = 0.3


def _inputs(batch, windows=False):
    b = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in batch.items()}
    n, t = b["log_q"].shape
    idx = torch.arange(t)[None, :]
    lengths = b["lengths"]
    out = dict(b, mask=(idx < lengths[:, None]).double(), last=(idx == lengths[:, None] - 1).double())
    if windows:
        g = torch.Generator().manual_seed(1)
        start = (torch.rand(n, generator=g, dtype=torch.float64) * lengths).long()
        span = lengths - start
        end = start + 1 + (torch.rand(n, generator=g, dtype=torch.float64) * span).long()
        end = torch.minimum(end, lengths)
        out.update(
            start=start,
            end=end,
            wmask=((idx >= start[:, None]) & (idx < end[:, None])).double(),
            v_start=torch.randn(n, generator=g, dtype=torch.float64),
            v_end=torch.randn(n, generator=g, dtype=torch.float64),
        )
    return out


def reference(kernel, x, scalar, wrong=False):
    """(loss, residual, ∂loss/∂log_q [B, T], ∂loss/∂scalar) by autograd, in float64."""
    q = x["log_q"].clone().requires_grad_(True)
    s = torch.tensor(float(scalar), dtype=torch.float64, requires_grad=True)
    p, r, beta, mask = x["log_p"], x["log_r"], float(x["beta"]), x["mask"]
    alpha = 1.0 / beta
    half = 1.0 if wrong else 0.5  # the negative control drops the ½
    if kernel == "rtb":
        res = s + ((q - p) * mask).sum(1) - beta * r
        loss = (half * res**2).mean()
    elif kernel in ("tpcl", "tpcl-surrogate"):
        step = x["last"] * r[:, None] - alpha * q + alpha * p  # r_t − α log q_t + α log p_t
        res = -s + (step * mask).sum(1)
        if kernel == "tpcl":
            loss = (half * res**2).mean()
        else:
            loss = (-res.detach() * (q * mask).sum(1)).mean()
    elif kernel == "reinforce-kl":
        reward = r - alpha * ((q - p) * mask).sum(1)
        res = (reward - reward.mean()).detach()
        loss = (-res * (q * mask).sum(1)).mean()
    elif kernel == "flawed":
        raw = r.exp()
        res = raw - raw.mean()
        sd = ((q - p) * mask).sum(1)
        loss = (-res * (q * mask).sum(1) + scalar * sd**2).mean()
    elif kernel in ("tpcl-windowed", "subtb"):
        w, terminal = x["wmask"], x["end"] == x["lengths"]
        vs = x["v_start"].clone().requires_grad_(True)
        ve = x["v_end"].clone().requires_grad_(True)
        if kernel == "tpcl-windowed":
            inner = ((-alpha * q + alpha * p) * w).sum(1)
            res = inner + torch.where(terminal, r, ve) - vs
        else:
            inner = ((q - p) * w).sum(1)
            res = vs + inner - torch.where(terminal, beta * r, ve)
        loss = (half * res**2).mean()
        gq, gvs, gve = torch.autograd.grad(loss, [q, vs, ve])
        return loss.item(), res.detach(), gq, (gvs, gve)
    else:
        raise ValueError(kernel)
    gq, gs = torch.autograd.grad(loss, [q, s], allow_unused=True)
    gs = 0.0 if gs is None else gs.item()
    return loss.item(), res.detach(), gq, gs


SCALAR = {"rtb": 0.7, "tpcl": 0.7 / 1.5, "tpcl-surrogate": 0.2, "reinforce-kl": 0.0, "flawed": KAPPA}
KERNELS = list(SCALAR) + ["tpcl-windowed", "subtb"]


def _run(kernel, x, dtype, as_torch):
    conv = (lambda a: a.to(dtype)) if as_torch else (lambda a: a.to(dtype).numpy())
    args = [conv(x["log_q"]), conv(x["log_p"]), x["lengths"] if as_torch else x["lengths"].numpy(), conv(x["log_r"]), x["beta"]]
    if kernel in ("tpcl-windowed", "subtb"):
        return losses.evaluate(
            kernel, *args, window_start=x["start"].numpy(), window_end=x["end"].numpy(),
            value_start=conv(x["v_start"]), value_end=conv(x["v_end"]),
        )
    return losses.evaluate(kernel, *args, scalar=SCALAR[kernel])


def _close(a, b, rtol):
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).double()
    b = torch.as_tensor(b).double()
    scale = max(float(b.abs().max()), 1e-300)
    return float((a - b).abs().max()) <= rtol * scale


def _check(out, ref, kernel, rtol):
    loss, res, gq, gs = ref
    ok = abs(out.loss - loss) <= rtol * abs(loss) and _close(out.residual, res, rtol) and _close(out.dense, gq, rtol)
    if kernel in ("tpcl-windowed", "subtb"):
        ok = ok and _close(out.grad_start, gs[0], rtol) and _close(out.grad_end, gs[1], rtol)
    else:
        ok = ok and abs(out.grad_scalar - gs) <= rtol * max(abs(gs), abs(out.loss))
    return ok


@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_equals_autograd(batch, kernel, dtype, as_torch):
    x = _inputs(batch, windows=kernel in ("tpcl-windowed", "subtb"))
    if dtype == torch.float32:
        # The reference sees the same (rounded) inputs the f32 kernel does.
        for k in ("log_q", "log_p", "log_r", "v_start", "v_end"):
            if k in x:
                x[k] = x[k].float().double()
    out = _run(kernel, x, dtype, as_torch)
    # f64: a few ulps over T = 12 steps and B = 64 rows; f32: the same in f32's unit roundoff.
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    assert out.kernel == kernel
    assert _check(out, reference(kernel, x, SCALAR.get(kernel, 0.0)), kernel, rtol)
    kind = torch.Tensor if as_torch else np.ndarray
    assert isinstance(out.dense, kind) and out.dense.dtype == (dtype if as_torch else np.dtype(str(dtype).split(".")[1]))
    assert tuple(out.dense.shape) == tuple(x["log_q"].shape)


@pytest.mark.parametrize("kernel", ["rtb", "tpcl", "tpcl-windowed", "subtb"])
def test_wrong_reference_disagrees(batch, kernel):
    """Negative control: a reference without the ½ must not pass the same check."""
    x = _inputs(batch, windows=kernel in ("tpcl-windowed", "subtb"))
    out = _run(kernel, x, torch.float64, False)
    assert not _check(out, reference(kernel, x, SCALAR.get(kernel, 0.0), wrong=True), kernel, 1e-12)


def test_per_trajectory_form(batch):
    full = losses.rtb(batch["log_q"], batch["log_p"], batch["lengths"], batch["log_r"], 1.5, 0.7)
    lean = losses.rtb(batch["log_q"], batch["log_p"], batch["lengths"], batch["log_r"], 1.5, 0.7, dense=False)
    assert lean.dense is None
    np.testing.assert_array_equal(lean.g, full.g)
    assert lean.loss == full.loss


def test_tpcl_is_alpha_squared_rtb_in_floats(batch):
    """C2 through the bindings: the Trust-PCL kernel (per-step RL terms) at V(s0) = α log Z
    gives α² × RTB's loss and gradient, within rounding."""
    args = (batch["log_q"], batch["log_p"], batch["lengths"], batch["log_r"], 1.5)
    rtb = losses.rtb(*args, 0.7)
    tpcl = losses.tpcl(*args, 0.7 / 1.5)
    a2 = (1 / 1.5) ** 2
    assert tpcl.loss == pytest.approx(a2 * rtb.loss, rel=1e-13)
    np.testing.assert_allclose(tpcl.dense, a2 * rtb.dense, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kernel, fn", [("rtb", losses.rtb_loss), ("tpcl", losses.tpcl_loss)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_differentiable_loss(batch, kernel, fn, dtype):
    """rtb_loss / tpcl_loss as torch functions: autograd through the kernel's backward equals
    autograd through the plain-PyTorch reference."""
    x = _inputs(batch)
    q = x["log_q"].to(dtype).requires_grad_(True)
    s = torch.tensor(SCALAR[kernel], dtype=dtype, requires_grad=True)
    loss = fn(q, x["log_p"].to(dtype), x["lengths"], x["log_r"].to(dtype), x["beta"], s)
    (2.0 * loss).backward()
    ref_loss, _, ref_gq, ref_gs = reference(kernel, x, SCALAR[kernel])
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    assert loss.dtype == dtype
    assert abs(loss.item() - ref_loss) <= rtol * ref_loss
    assert _close(q.grad, 2.0 * ref_gq, rtol)
    assert abs(s.grad.item() - 2.0 * ref_gs) <= rtol * abs(2.0 * ref_gs)


def test_layouts_give_identical_results(batch):
    """A Fortran-ordered or strided array is read in logical order (gathered), a C-contiguous
    one copied directly: the results are bit-identical."""
    args = [batch["log_q"], batch["log_p"], batch["lengths"], batch["log_r"]]
    ref = losses.rtb(*args, 1.5, 0.7)
    fortran = [np.asfortranarray(a) for a in args]
    strided = [np.repeat(a, 2, axis=0)[::2] for a in args]
    for variant in (fortran, strided):
        assert not variant[0].flags.c_contiguous
        out = losses.rtb(*variant, 1.5, 0.7)
        assert out.loss == ref.loss
        np.testing.assert_array_equal(out.dense, ref.dense)
    t = torch.tensor(batch["log_q"]).T.contiguous().T  # a transposed (non-contiguous) view
    assert not t.is_contiguous()
    out = losses.rtb(t, torch.tensor(batch["log_p"]), batch["lengths"], torch.tensor(batch["log_r"]), 1.5, 0.7)
    assert out.loss == ref.loss
