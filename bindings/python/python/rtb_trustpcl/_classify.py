"""The convention detector from Python: :func:`check_loss` (PyTorch) and :func:`classify`
(numpy), both over the core crate's ``conventions::classify``."""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from . import _native
from ._native import InputError

# The names check_loss can pass to the user's function (log_z is an alias of log_Z).
_ARGUMENTS = ("log_q", "log_p", "lengths", "mask", "log_r", "beta", "log_Z", "log_z")


@dataclass(frozen=True)
class Candidate:
    """One candidate convention and how far the user's numbers are from it.

    ``residual`` is ``beta-on-log-r`` (``δ = log Z + Σ(log q − log p) − β log r``, RTB as in
    torchgfn and the RTB paper), ``beta-on-log-ratio`` (``δ' = log Z + β Σ(log q − log p) −
    log r``), ``var-grad`` or ``var-grad-plus-mean``; the loss is ``[½] α^alpha_power ·
    residual²`` with ``α = 1/β``, reduced by ``reduction`` (``mean`` or ``sum``; ``None`` when
    the user's data cannot tell: per-trajectory losses). ``distance`` is the largest relative
    distance over the quantities compared (0 = identical); ``factor`` the least-squares ``f``
    with user loss ≈ f × candidate loss.
    """

    name: str
    residual: str
    alpha_power: int
    half: bool
    reduction: Optional[str]
    distance: float
    factor: float

    @classmethod
    def _from_json(cls, c: dict) -> "Candidate":
        return cls(
            name=c["name"],
            residual=c["residual"],
            alpha_power=int(c["alpha_power"]),
            half=bool(c["half"]),
            reduction=c["reduction"] if c["reduction_determined"] else None,
            distance=_num(c["distance"]),
            factor=_num(c["factor"]),
        )

    def _line(self) -> str:
        red = self.reduction or "reduction not determined"
        return (
            f"{self.name} [{red}]: relative distance {self.distance:.3e}, "
            f"user ≈ {self.factor:.4g} × it"
        )


def _num(x) -> float:
    # serde_json writes non-finite floats as null.
    return math.inf if x is None else float(x)


@dataclass(frozen=True)
class Classification:
    """What :func:`check_loss` / :func:`classify` found.

    ``convention`` is the best matching candidate (``None`` when none is within
    ``tolerance``); ``matches`` every candidate within it, ``candidates`` all of them, best
    first. ``repr`` prints the verdict and the closest candidates.
    """

    tolerance: float
    matches: List[Candidate]
    candidates: List[Candidate]
    # What was compared: "loss" (per-trajectory or reduced), "grad_log_z", "grad_log_q".
    compared: List[str] = field(default_factory=list)

    @property
    def convention(self) -> Optional[Candidate]:
        return self.matches[0] if self.matches else None

    @property
    def name(self) -> Optional[str]:
        return self.convention.name if self.convention else None

    @property
    def closest(self) -> Candidate:
        return self.candidates[0]

    def __bool__(self) -> bool:
        return bool(self.matches)

    def __repr__(self) -> str:
        head = (
            f"matches: {self.convention._line()}"
            if self.convention
            else f"no convention matches (tolerance {self.tolerance:g}); closest: {self.closest._line()}"
        )
        if len(self.matches) > 1:
            head += "\nalso matches (this batch cannot tell them apart; try another beta):"
            head += "".join(f"\n  {m._line()}" for m in self.matches[1:])
        lines = [
            f"<rtb_trustpcl.Classification ({', '.join(self.compared) or 'loss'} compared, "
            f"tolerance {self.tolerance:g})",
            head,
            "closest candidates:",
        ]
        lines += [f"  {c._line()}" for c in self.candidates[:5]]
        return "\n".join(lines) + ">"

    @classmethod
    def _from_json(cls, text: str, compared: List[str]) -> "Classification":
        d = json.loads(text)
        return cls(
            tolerance=float(d["tolerance"]),
            matches=[Candidate._from_json(c) for c in d["matches"]],
            candidates=[Candidate._from_json(c) for c in d["candidates"]],
            compared=compared,
        )


def export_batch(
    *,
    seed: int = 0,
    batch: int = 64,
    steps: int = 12,
    beta: float = 1.5,
    log_z: float = 0.7,
) -> Dict[str, object]:
    """The batch ``rtb-trustpcl export-batch`` writes (same seed, same numbers), as numpy
    arrays: ``log_q``, ``log_p`` (``[B, T]`` float64, 0 past each length), ``lengths``
    (``[B]`` int64, in ``1..=T``), ``log_r`` (``[B]``), and the floats ``beta``, ``log_z``."""
    return _native.export_batch(seed=seed, batch=batch, steps=steps, beta=beta, log_z=log_z)


def _f64(what: str, x, shape=None) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be a real number array, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if shape is not None and a.shape != shape:
        raise InputError(f"{what} has shape {a.shape}, expected {shape}")
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise InputError(f"{what} is not finite at index {tuple(int(i) for i in bad)}: {a[tuple(bad)]}")
    return a


def classify(
    batch: Dict[str, object],
    loss,
    *,
    grad_log_z: Optional[float] = None,
    grad_log_q=None,
    tol: float = 1e-4,
) -> Classification:
    """Names the convention of losses computed on ``batch`` (as :func:`export_batch` returns
    it): ``loss`` per trajectory (``[B]``) or reduced (one value); ``grad_log_z`` and
    ``grad_log_q`` (``[B, T]``), the gradients of the reduced loss, when available (they fix
    the reduction)."""
    log_q = _f64("log_q", batch["log_q"])
    if log_q.ndim != 2:
        raise InputError(f"log_q has shape {log_q.shape}, expected [B, T]")
    b, t = log_q.shape
    loss = _f64("loss", loss).reshape(-1)
    compared = ["loss (reduced)" if loss.size == 1 else "loss (per trajectory)"]
    gq = None
    if grad_log_z is not None:
        grad_log_z = float(_f64("grad_log_z", grad_log_z).reshape(-1)[0])
        compared.append("grad_log_z")
    if grad_log_q is not None:
        gq = _f64("grad_log_q", grad_log_q, (b, t))
        compared.append("grad_log_q")
    lengths = np.asarray(batch["lengths"])
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    text = _native.classify(
        log_q,
        _f64("log_p", batch["log_p"], (b, t)),
        lengths.astype(np.int64),
        _f64("log_r", batch["log_r"], (b,)),
        float(batch["beta"]),
        float(batch["log_z"]),
        loss,
        grad_log_z=grad_log_z,
        grad_log_q=gq,
        tol=tol,
    )
    return Classification._from_json(text, compared)


def _call_user(loss_fn: Callable, tensors: dict):
    """Calls ``loss_fn`` with the tensors its signature names (or all of them, by keyword, if
    it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(loss_fn)
    except (TypeError, ValueError):
        return loss_fn(**{k: v for k, v in tensors.items() if k != "log_z"})
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return loss_fn(**{k: v for k, v in tensors.items() if k != "log_z"})
    kwargs = {}
    for name, p in params.items():
        if name in tensors:
            kwargs[name] = tensors[name]
        elif p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
        ):
            raise TypeError(
                f"check_loss: loss_fn's parameter {name!r} is not one check_loss provides "
                f"(it passes, by name: {', '.join(_ARGUMENTS)}; give {name!r} a default or "
                "wrap the function)"
            )
    return loss_fn(**kwargs)


def check_loss(
    loss_fn: Callable,
    *,
    dtype=None,
    device=None,
    seed: int = 0,
    batch: int = 64,
    steps: int = 12,
    beta: float = 1.5,
    log_z: float = 0.7,
    tol: float = 1e-4,
) -> Classification:
    """Which convention does ``loss_fn`` implement?

    Builds the batch ``rtb-trustpcl export-batch --seed SEED`` writes as torch tensors of
    ``dtype`` (float64 by default, or float32) on ``device``, calls ``loss_fn`` with them by
    keyword, takes the gradients of its result with autograd and names the convention
    (``δ = log Z + Σ(log q − log p) − β log r`` or β on the log-ratio or VarGrad, ``½`` or
    not, ``α^k`` with ``α = 1/β``, mean or sum) with the closest candidates.

    ``loss_fn`` receives, by name, whichever of these its signature lists (all, with
    ``**kwargs``): ``log_q``, ``log_p`` (``[B, T]``, requiring grad / not, 0 on padding),
    ``lengths`` (``[B]`` int64), ``mask`` (``[B, T]`` bool, True on live steps), ``log_r``
    (``[B]``), ``beta`` (0-d tensor), ``log_Z`` (0-d tensor requiring grad; ``log_z`` is an
    alias). It returns per-trajectory losses (``[B]``) or a reduced loss (one value); with a
    reduced loss, ``∂/∂log Z`` and ``∂/∂log q`` are compared too, which fixes the reduction.
    Results on a CUDA device are moved to the CPU. Raises ``TypeError`` / :class:`InputError`
    on a bad dtype, shape or a non-finite result.
    """
    import torch

    if dtype is None:
        dtype = torch.float64
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"check_loss: dtype must be torch.float32 or torch.float64, got {dtype}")
    device = torch.device(device if device is not None else "cpu")
    b = export_batch(seed=seed, batch=batch, steps=steps, beta=beta, log_z=log_z)
    bsz, t = b["log_q"].shape
    log_q = torch.tensor(b["log_q"], dtype=dtype, device=device, requires_grad=True)
    log_p = torch.tensor(b["log_p"], dtype=dtype, device=device)
    lengths = torch.tensor(b["lengths"], dtype=torch.int64, device=device)
    mask = torch.arange(t, device=device)[None, :] < lengths[:, None]
    log_r = torch.tensor(b["log_r"], dtype=dtype, device=device)
    beta_t = torch.tensor(b["beta"], dtype=dtype, device=device)
    log_Z = torch.tensor(b["log_z"], dtype=dtype, device=device, requires_grad=True)
    tensors = dict(
        log_q=log_q, log_p=log_p, lengths=lengths, mask=mask, log_r=log_r, beta=beta_t,
        log_Z=log_Z, log_z=log_Z,
    )
    out = _call_user(loss_fn, tensors)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"check_loss: loss_fn must return a torch.Tensor, got {type(out).__name__}")
    if not out.is_floating_point():
        raise TypeError(f"check_loss: loss_fn returned a tensor of dtype {out.dtype}, expected a float dtype")
    if out.numel() not in (1, bsz):
        raise InputError(
            f"check_loss: loss_fn returned shape {tuple(out.shape)}: expected per-trajectory "
            f"losses ({bsz} values) or a reduced loss (1 value)"
        )
    values = out.detach().to("cpu", torch.float64).reshape(-1).numpy()
    if not np.all(np.isfinite(values)):
        i = int(np.argwhere(~np.isfinite(values))[0][0])
        raise InputError(f"check_loss: loss_fn returned a non-finite loss at index {i}: {values[i]}")
    grad_z = grad_q = None
    if out.numel() == 1 and out.requires_grad:
        gz, gq = torch.autograd.grad(out.reshape(()), [log_Z, log_q], allow_unused=True)
        # A loss that does not use log_Z (VarGrad) has ∂/∂log Z = 0.
        grad_z = 0.0 if gz is None else float(gz.detach().to("cpu", torch.float64))
        grad_q = (
            np.zeros((bsz, t))
            if gq is None
            else gq.detach().to("cpu", torch.float64).numpy()
        )
    return classify(b, values, grad_log_z=grad_z, grad_log_q=grad_q, tol=tol)
