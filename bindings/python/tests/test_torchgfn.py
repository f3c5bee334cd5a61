"""torchgfn's own RTB and Trust-PCL losses, run on our batch through check_loss, are named
correctly: RTB as ½δ² with β on log r and a batch mean, Trust-PCL as α²·RTB.

torchgfn's losses take an environment and a `Trajectories` object and evaluate the policy
estimators on its states. Here every number comes from our batch instead, through the two
places torchgfn reads per-step log-probabilities from:
- the posterior's, from `trajectories.log_probs` (torchgfn's on-policy path,
  `recalculate_all_logprobs=False`, as a sampler that stored them leaves them);
- the frozen prior's, from `get_trajectory_pfs(prior_pf, ...)`, which we answer with our
  `log_p` for the prior estimator (and nothing else).
Everything else — the sum over steps, the residual, `logZ`, `HalfSquaredLoss`,
`loss_reduce`, and Trust-PCL's α² — is torchgfn's code.
"""

from types import SimpleNamespace

import pytest
import torch

import rtb_trustpcl

gfn_tb = pytest.importorskip("gfn.gflownet.trajectory_balance")
from gfn.gflownet.losses import SquaredLoss  # noqa: E402


class _Posterior(torch.nn.Module):
    """Stands in for the policy estimator: torchgfn only checks that it is policy-capable,
    then reads the stored log-probs."""

    def init_context(self, *args, **kwargs):  # pragma: no cover - never called
        raise AssertionError("the posterior's log-probs are read from the trajectories")


class _Prior(torch.nn.Module):
    """Stands in for the frozen prior estimator (no trainable parameter)."""


@pytest.fixture
def prior_from_batch(monkeypatch):
    """Makes torchgfn's `get_trajectory_pfs` return our per-step `log p` (as `(T, N)`) for the
    prior estimator; other estimators go through torchgfn's own function."""
    original = gfn_tb.get_trajectory_pfs
    state = {}

    def get_trajectory_pfs(pf, trajectories, recalculate_all_logprobs=True, **kw):
        if pf is state["prior"]:
            return state["log_p"].T
        return original(pf, trajectories, recalculate_all_logprobs=recalculate_all_logprobs, **kw)

    monkeypatch.setattr(gfn_tb, "get_trajectory_pfs", get_trajectory_pfs)
    return state


def _trajectories(log_q, mask, log_r):
    return SimpleNamespace(
        is_backward=False,
        has_log_probs=True,
        log_probs=(log_q * mask).T,  # (T, N), 0 past each length as torchgfn pads
        log_rewards=log_r,
        batch_size=log_q.shape[0],
        max_length=log_q.shape[1],
        states=SimpleNamespace(conditions=None),
    )


def _loss_fn(state, make, reduction="mean"):
    def loss_fn(log_q, log_p, mask, log_r, beta, log_Z):
        prior = _Prior()
        gfn = make(_Posterior(), prior, beta, log_Z).to(log_q.dtype)
        state.update(prior=prior, log_p=log_p * mask)
        return gfn.loss(
            None,
            _trajectories(log_q, mask, log_r),
            recalculate_all_logprobs=False,
            reduction=reduction,
        )

    return loss_fn


def make_rtb(pf, prior, beta, log_Z, **kw):
    return gfn_tb.RelativeTrajectoryBalanceGFlowNet(pf, prior, logZ=log_Z, beta=float(beta), **kw)


def make_trust_pcl(pf, prior, beta, log_Z):
    return gfn_tb.TrustPCLGFlowNet(pf, prior, alpha=1.0 / float(beta), logZ=log_Z)


def _key(c):
    return (c.residual, c.alpha_power, c.half, c.reduction)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torchgfn_rtb_is_half_delta_squared_beta_on_log_r_mean(prior_from_batch, dtype):
    c = rtb_trustpcl.check_loss(_loss_fn(prior_from_batch, make_rtb), dtype=dtype)
    assert c.convention is not None, repr(c)
    assert _key(c.convention) == ("beta-on-log-r", 0, True, "mean"), repr(c)
    assert len(c.matches) == 1, repr(c)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torchgfn_trust_pcl_is_alpha_squared_rtb(prior_from_batch, dtype):
    c = rtb_trustpcl.check_loss(_loss_fn(prior_from_batch, make_trust_pcl), dtype=dtype)
    assert c.convention is not None, repr(c)
    assert _key(c.convention) == ("beta-on-log-r", 2, True, "mean"), repr(c)
    assert len(c.matches) == 1, repr(c)
    # Against RTB's own candidate the factor is α² (β = 1.5: α² = 4/9).
    rtb = next(x for x in c.candidates if _key(x) == ("beta-on-log-r", 0, True, "mean"))
    assert rtb.factor == pytest.approx((1 / 1.5) ** 2, rel=1e-5)


def test_torchgfn_variants_are_told_apart(prior_from_batch):
    """Negative controls on torchgfn's own switches: the squared loss without ½, and the
    sum reduction, are named as such — not as the default."""
    no_half = lambda pf, prior, beta, log_Z: make_rtb(pf, prior, beta, log_Z, loss_fn=SquaredLoss())
    c = rtb_trustpcl.check_loss(_loss_fn(prior_from_batch, no_half))
    assert _key(c.convention) == ("beta-on-log-r", 0, False, "mean"), repr(c)
    c = rtb_trustpcl.check_loss(_loss_fn(prior_from_batch, make_rtb, reduction="sum"))
    assert _key(c.convention) == ("beta-on-log-r", 0, True, "sum"), repr(c)
    # Per-trajectory losses: the convention is named, the reduction is not determined.
    c = rtb_trustpcl.check_loss(_loss_fn(prior_from_batch, make_rtb, reduction="none"))
    assert _key(c.convention) == ("beta-on-log-r", 0, True, None), repr(c)
