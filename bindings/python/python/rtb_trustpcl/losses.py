"""The fused loss-and-gradient kernels (the core crate's ``kernels::evaluate``) on numpy arrays
and torch tensors.

Inputs are row-major ``[B, T]`` per-step ``log_q``, ``log_p`` (float32 or float64, one dtype
for all float inputs; entries past each length are never read), ``lengths`` (``[B]``
integers in ``0..=T``; a length-0 row is padding), ``log_r`` (``[B]``) and ``beta``. Each
function returns a :class:`KernelResult`: the batch-mean ``loss``, the per-trajectory
``residual`` and ``g`` (``∂loss/∂log_q[i, t] = g[i]`` on every live step), the ``dense``
``[B, T]`` gradient (zero on padding; ``dense=False`` skips it), and ``grad_scalar``
(``∂loss/∂log Z`` for RTB, ``∂loss/∂V(s0)`` for Trust-PCL). Arrays come back as the kind they
went in (numpy, or torch on the input's device and dtype); torch inputs on a GPU are copied
to the CPU for the kernel. The work runs in Rust with the GIL released.

:func:`rtb_loss` and :func:`tpcl_loss` are the same kernels as differentiable torch
functions (gradients to ``log_q`` and the scalar). Trust-PCL is computed from its per-step RL
terms ``r_t − α log q_t + α log p_t``, never as a multiple of RTB.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _native
from ._native import InputError

__all__ = [
    "KernelResult",
    "evaluate",
    "rtb",
    "tpcl",
    "tpcl_windowed",
    "subtb",
    "tpcl_surrogate",
    "reinforce_kl",
    "flawed",
    "rtb_loss",
    "tpcl_loss",
]

KERNELS = ("rtb", "tpcl", "tpcl-windowed", "subtb", "tpcl-surrogate", "reinforce-kl", "flawed")


class KernelResult(NamedTuple):
    """One kernel's output (see the module docstring)."""

    kernel: str
    loss: float
    residual: object
    g: object
    grad_scalar: float
    dense: Optional[object] = None
    grad_start: Optional[object] = None
    grad_end: Optional[object] = None


def _is_torch(x) -> bool:
    t = type(x)
    return t.__module__.startswith("torch") and t.__name__ in ("Tensor", "Parameter")


class _Converted:
    """Inputs as numpy arrays, and how to give results back (numpy, or torch on a device)."""

    def __init__(self, log_q):
        self.torch_device = log_q.device if _is_torch(log_q) else None

    def back(self, a):
        if a is None or self.torch_device is None:
            return a
        import torch

        return torch.from_numpy(a).to(self.torch_device)


def _numpy(what: str, x) -> np.ndarray:
    if _is_torch(x):
        # Zero-copy for a CPU tensor; a GPU tensor is copied to the CPU.
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def _float_array(what: str, x, ndim: int, dtype=None) -> np.ndarray:
    a = _numpy(what, x)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{what} must be float32 or float64, got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{what} has dtype {a.dtype} but log_q has {dtype}: use one float dtype")
    if a.ndim != ndim:
        want = "[B, T]" if ndim == 2 else "[B]"
        raise InputError(f"{what} has shape {a.shape}, expected {ndim} dimensions {want}")
    return a


def _int_array(what: str, x) -> np.ndarray:
    a = _numpy(what, x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise InputError(f"{what} has shape {a.shape}, expected [B]")
    return a.astype(np.int64, copy=False)


def _finite_scalar(what: str, x) -> float:
    if _is_torch(x):
        if x.numel() != 1:
            raise InputError(f"{what} must be a scalar, got shape {tuple(x.shape)}")
        x = x.detach().cpu().item()
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a real number, got {type(x).__name__}") from None
    return v


def evaluate(
    kernel: str,
    log_q,
    log_p,
    lengths,
    log_r,
    beta,
    *,
    scalar=0.0,
    dense: bool = True,
    window_start=None,
    window_end=None,
    value_start=None,
    value_end=None,
) -> KernelResult:
    """Evaluates one kernel by name (``rtb``, ``tpcl``, ``tpcl-windowed``, ``subtb``,
    ``tpcl-surrogate``, ``reinforce-kl``, ``flawed``); ``scalar`` is ``log Z``, ``V(s0)`` or
    κ. The windowed kernels take ``window_start``, ``window_end`` (state indices,
    ``start < end ≤ length``) and the learned values at them."""
    if kernel not in KERNELS:
        raise InputError(f"unknown kernel {kernel!r} (one of {', '.join(KERNELS)})")
    conv = _Converted(log_q)
    q = _float_array("log_q", log_q, 2)
    p = _float_array("log_p", log_p, 2, q.dtype)
    r = _float_array("log_r", log_r, 1, q.dtype)
    if p.shape != q.shape:
        raise InputError(f"log_p has shape {p.shape}, expected {q.shape} (the shape of log_q)")
    if r.shape[0] != q.shape[0]:
        raise InputError(f"log_r has shape {r.shape}, expected ({q.shape[0]},)")
    lens = _int_array("lengths", lengths)
    win = {}
    given = [w is not None for w in (window_start, window_end, value_start, value_end)]
    if any(given):
        if not all(given):
            raise InputError("give all of window_start, window_end, value_start, value_end, or none")
        win = dict(
            window_start=_int_array("window_start", window_start),
            window_end=_int_array("window_end", window_end),
            value_start=_float_array("value_start", value_start, 1, q.dtype),
            value_end=_float_array("value_end", value_end, 1, q.dtype),
        )
    out = _native.kernel(
        kernel,
        q,
        p,
        lens,
        r,
        _finite_scalar("beta", beta),
        scalar=_finite_scalar("scalar", scalar),
        dense=dense,
        **win,
    )
    return KernelResult(
        kernel=out["kernel"],
        loss=out["loss"],
        residual=conv.back(out["residual"]),
        g=conv.back(out["g"]),
        grad_scalar=out["grad_scalar"],
        dense=conv.back(out.get("dense")),
        grad_start=conv.back(out.get("grad_start")),
        grad_end=conv.back(out.get("grad_end")),
    )


def rtb(log_q, log_p, lengths, log_r, beta, log_z, *, dense: bool = True) -> KernelResult:
    """RTB: ``δ = log Z + Σ log q − Σ log p − β log r``, ``loss = mean ½ δ²``."""
    return evaluate("rtb", log_q, log_p, lengths, log_r, beta, scalar=log_z, dense=dense)


def tpcl(log_q, log_p, lengths, log_r, beta, v0, *, dense: bool = True) -> KernelResult:
    """Trust-PCL on the full trajectory (γ = 1, α = 1/β, prior as reference):
    ``C = −V(s0) + Σ_t [r_t − α log q_t + α log p_t]``, ``loss = mean ½ C²``."""
    return evaluate("tpcl", log_q, log_p, lengths, log_r, beta, scalar=v0, dense=dense)


def tpcl_surrogate(log_q, log_p, lengths, log_r, beta, v0, *, dense: bool = True) -> KernelResult:
    """The reference Trust-PCL code's policy surrogate ``−sg(C) · Σ_t log q_t``."""
    return evaluate("tpcl-surrogate", log_q, log_p, lengths, log_r, beta, scalar=v0, dense=dense)


def reinforce_kl(log_q, log_p, lengths, log_r, beta, *, dense: bool = True) -> KernelResult:
    """REINFORCE with the KL-regularized reward and a batch-mean baseline."""
    return evaluate("reinforce-kl", log_q, log_p, lengths, log_r, beta, dense=dense)


def flawed(log_q, log_p, lengths, log_r, beta, kappa, *, dense: bool = True) -> KernelResult:
    """The flawed baseline (a negative control): raw reward advantage plus ``κ (log q(τ) −
    log p(τ))²``."""
    return evaluate("flawed", log_q, log_p, lengths, log_r, beta, scalar=kappa, dense=dense)


def tpcl_windowed(
    log_q, log_p, lengths, log_r, beta, window_start, window_end, v_start, v_end, *, dense=True
) -> KernelResult:
    """Trust-PCL on one window per trajectory with learned ``V`` at its boundaries."""
    return evaluate(
        "tpcl-windowed", log_q, log_p, lengths, log_r, beta, dense=dense,
        window_start=window_start, window_end=window_end, value_start=v_start, value_end=v_end,
    )


def subtb(
    log_q, log_p, lengths, log_r, beta, window_start, window_end, log_f_start, log_f_end, *, dense=True
) -> KernelResult:
    """Relative SubTB on one window per trajectory with learned ``log F`` at its boundaries."""
    return evaluate(
        "subtb", log_q, log_p, lengths, log_r, beta, dense=dense,
        window_start=window_start, window_end=window_end, value_start=log_f_start,
        value_end=log_f_end,
    )


def _differentiable(kernel: str, log_q, log_p, lengths, log_r, beta, scalar):
    import torch

    for what, x in (("log_p", log_p), ("log_r", log_r), ("beta", beta)):
        if _is_torch(x) and x.requires_grad:
            raise InputError(
                f"{kernel}: {what} requires grad, but the kernel differentiates only log_q and "
                "the scalar: detach it"
            )

    class _Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, s):
            out = evaluate(kernel, q, log_p, lengths, log_r, beta, scalar=s, dense=True)
            ctx.save_for_backward(out.dense)
            ctx.grad_scalar = out.grad_scalar
            return torch.tensor(out.loss, dtype=q.dtype, device=q.device)

        @staticmethod
        def backward(ctx, grad_out):
            (dense,) = ctx.saved_tensors
            return grad_out * dense, grad_out * ctx.grad_scalar

    if not _is_torch(log_q):
        raise TypeError(f"{kernel}_loss takes torch tensors; use {kernel}() for numpy arrays")
    s = scalar if _is_torch(scalar) else torch.tensor(float(scalar), dtype=log_q.dtype, device=log_q.device)
    return _Fn.apply(log_q, s)


def rtb_loss(log_q, log_p, lengths, log_r, beta, log_Z):
    """RTB ``mean ½ δ²`` as a differentiable torch function of ``log_q`` and ``log_Z``
    (backward uses the fused kernel's gradients)."""
    return _differentiable("rtb", log_q, log_p, lengths, log_r, beta, log_Z)


def tpcl_loss(log_q, log_p, lengths, log_r, beta, v0):
    """Trust-PCL ``mean ½ C²`` as a differentiable torch function of ``log_q`` and ``V(s0)``."""
    return _differentiable("tpcl", log_q, log_p, lengths, log_r, beta, v0)
