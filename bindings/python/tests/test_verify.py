"""verify() returns the core's `verify --json` report as a dict; gradcheck() the
`gradcheck --json` report; a mutant makes the affected claims / checks fail."""

import json
import pathlib
import subprocess

import pytest

import rtb_trustpcl

ROOT = pathlib.Path(__file__).resolve().parents[3]
SPEC = ROOT / "spec"


# The small shipped environments (CI's `verify` runs all of them, the two generated ones
# included, through the CLI).
SMALL = ["chain", "two-paths", "diamond", "tree", "half-irrational", "skip-lengths", "lattice"]


def test_verify_small_specs_hold():
    report = rtb_trustpcl.verify([SPEC / f"{n}.toml" for n in SMALL])
    assert report["all_hold"] is True
    assert report["mutant"] is None
    assert sorted(e["name"] for e in report["environments"]) == sorted(SMALL)
    assert all(c["holds"] is not False for e in report["environments"] for c in e["claims"])


def test_verify_equals_the_cli_report():
    """The dict is the CLI's `verify --json` output (same claims, same verdicts)."""
    exe = ROOT / "target" / "release" / "rtb-trustpcl"
    if not exe.exists():
        pytest.skip("the release binary is not built")
    spec = SPEC / "diamond.toml"
    cli = json.loads(subprocess.run([exe, "verify", "--json", spec], capture_output=True, check=True).stdout)
    assert rtb_trustpcl.verify(spec) == cli


@pytest.mark.parametrize("mutant", ["missing-half", "flipped-sign", "beta-on-ratio", "alpha-not-squared"])
def test_verify_mutant_fails(mutant):
    report = rtb_trustpcl.verify([SPEC / "two-paths.toml", SPEC / "diamond.toml"], mutant=mutant)
    assert report["all_hold"] is False
    assert report["mutant"] == mutant
    failed = [c for e in report["environments"] for c in e["claims"] if c["holds"] is False]
    assert failed


def test_gradcheck_holds_and_mutant_fails():
    ok = rtb_trustpcl.gradcheck(batch=256, steps=16, dtype="f64")
    assert ok["all_hold"] is True and len(ok["checks"]) > 0
    bad = rtb_trustpcl.gradcheck(batch=256, steps=16, dtype="f64", mutant="missing-half")
    assert bad["all_hold"] is False
