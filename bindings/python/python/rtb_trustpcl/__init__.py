"""rtb-trustpcl for PyTorch users.

- :func:`check_loss`: which RTB / Trust-PCL / VarGrad convention does *your* loss implement?
  One call: it builds the batch ``rtb-trustpcl export-batch`` writes as torch tensors, runs your
  function on it, takes gradients with autograd and names the convention (the core crate's
  ``conventions::classify``).
- :mod:`rtb_trustpcl.losses`: the fused loss-and-gradient kernels on numpy arrays and torch
  tensors.
- :func:`verify`: the exact verification report (claims C1-C8 on spec files) as a dict.
- :func:`gradcheck`: the at-scale agreement report of the fused kernels as a dict.
- :func:`export_batch` and :func:`classify`: the two halves of :func:`check_loss`, on numpy
  arrays, for losses that are not written in PyTorch.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence, Union

from . import _native
from ._classify import Candidate, Classification, check_loss, classify, export_batch
from ._native import InputError

__all__ = [
    "Candidate",
    "Classification",
    "InputError",
    "check_loss",
    "classify",
    "export_batch",
    "gradcheck",
    "losses",
    "verify",
]

__version__ = _native.__version__

PathLike = Union[str, "os.PathLike[str]"]


def verify(
    paths: Union[PathLike, Sequence[PathLike]],
    *,
    mutant: Optional[str] = None,
    max_trajectories: int = 100_000,
    max_windows: int = 200_000,
) -> dict:
    """The ``rtb-trustpcl verify --json`` report on spec files or directories, as a dict.

    ``report["all_hold"]`` is True when every claim holds on every environment. ``mutant``
    swaps in a deliberately wrong variant (``missing-half``, ``flipped-sign``,
    ``beta-on-ratio``, ``alpha-not-squared``): the claims it affects then fail. Raises
    :class:`InputError` on a missing or malformed spec (the message names the file and field).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return json.loads(
        _native.verify(
            [os.fspath(p) for p in paths],
            mutant=mutant,
            max_trajectories=max_trajectories,
            max_windows=max_windows,
        )
    )


def gradcheck(
    *,
    batch: int = 4096,
    steps: int = 64,
    dtype: str = "f32",
    beta: float = 1.5,
    seed: int = 0,
    mutant: Optional[str] = None,
    exact_spec: Sequence[PathLike] = (),
    exact_samples: int = 256,
) -> dict:
    """The ``rtb-trustpcl gradcheck --json`` report, as a dict: the fused kernels' identities
    (C1-C4 in floats, f32 against f64) on a generated batch, each within a derived rounding
    bound; ``report["all_hold"]``. ``exact_spec`` also checks the f64 kernels against the
    exact engine on trajectories sampled from those specs. CPU only."""
    return json.loads(
        _native.gradcheck(
            batch=batch,
            steps=steps,
            dtype=dtype,
            beta=beta,
            seed=seed,
            mutant=mutant,
            exact_spec=[os.fspath(p) for p in exact_spec],
            exact_samples=exact_samples,
        )
    )


from . import losses  # noqa: E402  (needs the names above)
