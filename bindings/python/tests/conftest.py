"""Shared fixtures: the exported batch, and plain-PyTorch reference objectives."""

import numpy as np
import pytest

import rtb_trustpcl

torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def batch():
    """The batch `rtb-trustpcl export-batch --seed 0` writes (B = 64, T = 12, β = 1.5)."""
    return rtb_trustpcl.export_batch(seed=0)


def live_mask(lengths, steps):
    return torch.arange(steps)[None, :] < torch.as_tensor(lengths)[:, None]


def last_step_onehot(lengths, steps, dtype):
    """1 on each trajectory's last live step (where the terminal reward is received)."""
    lengths = torch.as_tensor(lengths)
    return (torch.arange(steps)[None, :] == (lengths[:, None] - 1)).to(dtype)
