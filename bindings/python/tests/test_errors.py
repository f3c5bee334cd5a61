"""Bad input raises a Python exception with a clear message (naming the input and the value),
never a crash or a silent result."""

import numpy as np
import pytest
import torch

import rtb_trustpcl
from rtb_trustpcl import InputError, _native, losses


@pytest.fixture
def arrays(batch):
    return dict(log_q=batch["log_q"].copy(), log_p=batch["log_p"].copy(), lengths=batch["lengths"].copy(), log_r=batch["log_r"].copy())


def rtb(a, **over):
    a = dict(a, **over)
    return losses.rtb(a["log_q"], a["log_p"], a["lengths"], a["log_r"], over.get("beta", 1.5), over.get("log_z", 0.7))


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


@pytest.mark.parametrize(
    "over, exc, words",
    [
        (dict(log_p=np.zeros((64, 11))), InputError, ["log_p", "(64, 11)", "(64, 12)"]),
        (dict(log_r=np.zeros(63)), InputError, ["log_r", "(63,)"]),
        (dict(log_q=np.zeros(64)), InputError, ["log_q", "(64,)"]),
        (dict(lengths=np.full(64, 13)), InputError, ["length 13", "0..=12"]),
        (dict(lengths=np.full(64, -1)), InputError, ["length -1"]),
        (dict(lengths=np.full(64, 2.0)), TypeError, ["lengths", "float64"]),
        (dict(log_q=np.ones((64, 12), dtype=np.int64)), TypeError, ["log_q", "int64"]),
        (dict(log_p=np.zeros((64, 12), dtype=np.float32)), TypeError, ["log_p", "float32", "float64"]),
        (dict(log_q=np.full((64, 12), 0.5)), InputError, ["positive log_q", "0.5"]),
        (dict(beta=0.0), InputError, ["beta", "0"]),
        (dict(beta=float("nan")), InputError, ["beta", "NaN"]),
        (dict(log_z=float("inf")), InputError, ["log_z", "inf"]),
        (dict(log_q="not an array"), TypeError, ["log_q"]),
    ],
)
def test_kernel_bad_input(arrays, over, exc, words):
    with pytest.raises(exc) as e:
        rtb(arrays, **over)
    for w in words:
        assert w.lower() in str(e.value).lower(), str(e.value)


def test_nan_in_a_live_step_is_named(arrays):
    arrays["log_q"][5, 0] = np.nan
    with pytest.raises(InputError, match=r"non-finite log_q at trajectory 5, step Some\(0\): NaN"):
        rtb(arrays)


def test_nan_in_padding_is_ignored(arrays):
    """Padding is never read (the contract): NaN there changes nothing."""
    i = int(np.argmin(arrays["lengths"]))
    assert arrays["lengths"][i] < 12
    ref = rtb(arrays).loss
    arrays["log_q"][i, -1] = np.nan
    assert rtb(arrays).loss == ref


def test_torch_inputs_bad_dtype_and_grad(batch):
    q = torch.tensor(batch["log_q"])
    with pytest.raises(TypeError, match="log_q must be float32 or float64, got dtype float16"):
        losses.rtb(q.half(), q.half(), batch["lengths"], batch["log_r"], 1.5, 0.7)
    with pytest.raises(InputError, match="log_p requires grad"):
        losses.rtb_loss(q, q.clone().requires_grad_(True), batch["lengths"], torch.tensor(batch["log_r"]), 1.5, 0.7)


def test_unknown_kernel_and_windows(arrays):
    with pytest.raises(InputError, match="unknown kernel 'tb'"):
        losses.evaluate("tb", arrays["log_q"], arrays["log_p"], arrays["lengths"], arrays["log_r"], 1.5)
    with pytest.raises(InputError, match="window_start"):
        losses.evaluate("subtb", arrays["log_q"], arrays["log_p"], arrays["lengths"], arrays["log_r"], 1.5)
    n = arrays["lengths"].shape[0]
    with pytest.raises(InputError, match="window"):
        losses.subtb(arrays["log_q"], arrays["log_p"], arrays["lengths"], arrays["log_r"], 1.5,
                     np.zeros(n, np.int64), arrays["lengths"] + 1, np.zeros(n), np.zeros(n))


def test_native_module_refuses_wrong_types(arrays):
    """Called directly (bypassing the Python layer), the native module still raises."""
    with pytest.raises(TypeError, match="log_q must be a 2-D numpy array of float32 or float64"):
        _native.kernel("rtb", [[0.0]], arrays["log_p"], arrays["lengths"], arrays["log_r"], 1.5)
    with pytest.raises(TypeError, match="lengths must be a 1-D numpy array of i64"):
        _native.kernel("rtb", arrays["log_q"], arrays["log_p"], arrays["lengths"].astype(np.int32), arrays["log_r"], 1.5)
    with pytest.raises(InputError, match="loss has 3 entries"):
        _native.classify(arrays["log_q"], arrays["log_p"], arrays["lengths"], arrays["log_r"], 1.5, 0.7, np.zeros(3))


def _rtb_loss(log_q, log_p, mask, log_r, beta, log_Z):
    return (0.5 * (log_Z + ((log_q - log_p) * mask).sum(1) - beta * log_r) ** 2).mean()


@pytest.mark.parametrize(
    "fn, exc, match",
    [
        (lambda log_q: log_q.sum(1)[:5], InputError, r"returned shape \(5,\)"),
        (lambda log_q: log_q.sum() * float("nan"), InputError, "non-finite loss"),
        (lambda log_q: 3.0, TypeError, "must return a torch.Tensor, got float"),
        (lambda log_q: (log_q > 0).sum(), TypeError, "dtype torch.int64"),
        (lambda log_q, temperature: log_q.sum(), TypeError, "parameter 'temperature'"),
        (lambda log_q, log_Z: (log_q.sum() + log_Z) ** 0.5 * 0 + torch.sqrt(log_Z - 10), InputError, "non-finite"),
    ],
)
def test_check_loss_bad_user_function(fn, exc, match):
    with pytest.raises(exc, match=match):
        rtb_trustpcl.check_loss(fn)


def test_check_loss_bad_arguments():
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.float64"):
        rtb_trustpcl.check_loss(_rtb_loss, dtype=torch.int32)
    with pytest.raises(InputError, match="beta must be finite and > 0"):
        rtb_trustpcl.check_loss(_rtb_loss, beta=-1.0)
    with pytest.raises(InputError, match="batch and steps must be at least 1"):
        rtb_trustpcl.check_loss(_rtb_loss, batch=0)


def test_nan_gradient_is_refused():
    """A finite loss whose gradient is NaN is refused, not classified."""

    def fn(log_q, log_p, mask, log_r, beta, log_Z):
        return _rtb_loss(log_q, log_p, mask, log_r, beta, log_Z) + 0.0 * torch.sqrt(log_q - log_q.detach()).sum()

    with pytest.raises(InputError, match="grad_log_q is not finite"):
        rtb_trustpcl.check_loss(fn)


def test_verify_and_gradcheck_bad_input(tmp_path):
    with pytest.raises(InputError, match="missing"):
        rtb_trustpcl.verify(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nbeta = "0"\nsource = "s0"\n')
    with pytest.raises(InputError, match="bad.toml"):
        rtb_trustpcl.verify(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no spec files"):
        rtb_trustpcl.verify(tmp_path / "empty")
    with pytest.raises(InputError, match="mutant: unknown name"):
        rtb_trustpcl.verify(bad, mutant="no-such-mutant")
    with pytest.raises(InputError, match="dtype"):
        rtb_trustpcl.gradcheck(dtype="f16")
    with pytest.raises(InputError, match="at least 1"):
        rtb_trustpcl.gradcheck(batch=0)
