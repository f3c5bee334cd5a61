#!/usr/bin/env python3
"""Check the spec corpora with the Python mirror of the loader's rules (benches/spec_model.py).

  * every file in spec/ loads, and the `name`s are unique;
  * tests/invalid-base.toml loads;
  * every file in tests/invalid/ (but EXPECTED.toml) is listed in tests/invalid/EXPECTED.toml and
    vice versa, is refused, and the expected substring occurs in the refusal (file path removed);
  * each is refused for exactly one reason, except where one defect may imply another
    (INHERENT below), so that the corpus tests one thing per file.

Plain Python 3.11 (tomllib), no sympy needed:  python3 benches/check_corpus.py
"""

from __future__ import annotations

import glob
import os
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import spec_model  # noqa: E402

# defect -> the most messages it may produce (one defect that implies another)
INHERENT = {
    "prior-gt-one.toml": 2,      # the edge's range, and (only edge of its state) the state's sum
    "trapped-cycle.toml": 3,     # the cycle, and each of its two states cannot reach a terminal
    "edge-into-source.toml": 2,  # the edge into the source, and its tail is unreachable
}


def main() -> int:
    bad = 0
    names: dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "spec", "*.toml"))):
        rel = os.path.relpath(path, ROOT)
        try:
            s = spec_model.load(path)
        except spec_model.SpecError as e:
            print(f"FAIL {rel} should be valid:\n{e}")
            bad += 1
            continue
        if s.name in names:
            print(f"FAIL {rel}: name {s.name!r} also used by {names[s.name]}")
            bad += 1
        names[s.name] = rel
        print(f"ok   {rel}: {len(s.states)} states, {len(s.edges)} edges, {len(s.sinks)} terminals, "
              f"{s.trajectory_count()} trajectories, beta {s.beta}")
    spec_model.load(os.path.join(ROOT, "tests", "invalid-base.toml"))

    inv = os.path.join(ROOT, "tests", "invalid")
    with open(os.path.join(inv, "EXPECTED.toml"), "rb") as f:
        expected = tomllib.load(f)
    files = {os.path.basename(p) for p in glob.glob(os.path.join(inv, "*.toml"))} - {"EXPECTED.toml"}
    for name in sorted(files ^ set(expected)):
        print(f"FAIL {name}: {'not in EXPECTED.toml' if name in files else 'listed but missing'}")
        bad += 1
    for name in sorted(files & set(expected)):
        path = os.path.join(inv, name)
        try:
            spec_model.load(path)
        except spec_model.SpecError as e:
            msgs = [m.replace(path, "") for m in e.errors]
            want = INHERENT.get(name, 1)
            hit = [m for m in msgs if expected[name] in m]
            if not hit or not 1 <= len(msgs) <= want:
                print(f"FAIL {name}: expected 1..{want} message(s) naming {expected[name]!r}, got {msgs}")
                bad += 1
            else:
                print(f"ok   tests/invalid/{name}: {msgs[0]}" + (f" (+{len(msgs) - 1} implied)" if len(msgs) > 1 else ""))
            continue
        print(f"FAIL {name}: accepted")
        bad += 1
    print("corpus OK" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
