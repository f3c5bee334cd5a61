#!/usr/bin/env python3
"""Generate a layered spec DAG with skip edges (exact rationals via fractions.Fraction).

Layout: the source s0, then layers 1..L of `--width` states each. Every state of the last layer
is a terminal; each state of an intermediate layer is a terminal with probability `--sink-prob`
(so trajectories have different lengths). A non-terminal state has 1..`--max-out` children,
chosen near its own position in the next layer (a band, like a diffusion chain), and each child
is moved with probability `--skip-prob` two or three layers ahead (skip edges: the same state is
reached by paths of different lengths). Every state gets a parent (reachability from s0) and
every non-terminal a child, so every state lies on a path from s0 to a terminal.

Priors (and posteriors, given on a fraction `--posterior-prob` of the states) are random
compositions of a small denominator D in {2, 3, 4, 6, 8, 12} (D >= the out-degree; the source,
whose out-degree is the width, uses D = width or 2*width), so each state's values sum to
exactly 1 as Fractions. Rewards come from a small list: `mixed` (any positive rationals) or
`squares` (perfect squares, so that r^beta is rational for beta = n/2).

Output is deterministic for given options (random.Random(seed)); the file starts with the
command that produced it. It is validated (benches/spec_model.py) before being written, and
its size (states, edges, terminals, number of trajectories) is printed on stderr.

    python3 benches/gen_spec.py --out spec/generated.toml                 # the shipped one
    python3 benches/gen_spec.py --layers 60 --width 80 --seed 7 --out /tmp/big.toml  # >= 10^4 edges
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec_model  # noqa: E402

DENOMS = [2, 3, 4, 6, 8, 12]
REWARDS = {
    "mixed": ["1/2", "2", "3", "3/2", "5", "1/3", "4", "2/3", "6", "5/4", "7", "3/4"],
    "squares": ["4", "9/4", "1/9", "25", "1/4", "9", "16/9", "4/25", "36", "1"],
}


def composition(rng: random.Random, k: int, big: bool = False) -> list[Fraction]:
    """k positive Fractions with a small common denominator, summing to exactly 1."""
    if big:
        d = rng.choice([k, 2 * k])
    else:
        d = rng.choice([x for x in DENOMS if x >= k] or [k])
    cuts = sorted(rng.sample(range(1, d), k - 1)) if k > 1 else []
    parts = [b - a for a, b in zip([0] + cuts, cuts + [d])]
    out = [Fraction(p, d) for p in parts]
    assert sum(out) == 1 and all(x > 0 for x in out)
    return out


def fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def generate(args) -> str:
    rng = random.Random(args.seed)
    L, W = args.layers, args.width
    sink = [[False] * W for _ in range(L + 1)]
    for l in range(1, L):
        sink[l] = [rng.random() < args.sink_prob for _ in range(W)]
        if all(sink[l]):
            sink[l][rng.randrange(W)] = False
    sink[L] = [True] * W

    def name(l: int, i: int) -> str:
        return "s0" if l == 0 else f"{'x' if sink[l][i] else 'n'}{l}_{i}"

    children: dict[tuple[int, int], list[tuple[int, int]]] = {(0, 0): [(1, i) for i in range(W)]}
    has_parent = {(1, i) for i in range(W)}
    for l in range(1, L):
        for i in range(W):
            if sink[l][i]:
                continue
            k = rng.randint(1, args.max_out)
            ch: list[tuple[int, int]] = []
            tries = 0
            while len(ch) < k and tries < 50:
                tries += 1
                m = l + 1
                if rng.random() < args.skip_prob:
                    m = min(L, l + rng.choice([2, 3]))
                j = (i + rng.randint(-args.band, args.band)) % W
                if (m, j) not in ch:
                    ch.append((m, j))
            children[(l, i)] = ch
            has_parent.update(ch)
    # Every state of layers 2..L gets a parent in the layer above (which has a non-terminal).
    for m in range(2, L + 1):
        for j in range(W):
            if (m, j) in has_parent:
                continue
            cands = [i for i in range(W) if not sink[m - 1][i]]
            i = min(cands, key=lambda c: (min((c - j) % W, (j - c) % W), rng.random()))
            children[(m - 1, i)].append((m, j))
            has_parent.add((m, j))

    rewards = REWARDS[args.rewards]
    lines = [
        "# generated: a layered DAG with skip edges, made by",
        "#   python3 benches/gen_spec.py " + " ".join(sys.argv[1:]),
        f"# (layers {L}, width {W}, seed {args.seed}); see that script for the layout.",
        f'name = "{args.name}"',
        f'beta = "{args.beta}"',
        'source = "s0"',
        "",
        "[rewards]",
    ]
    for l in range(1, L + 1):
        for i in range(W):
            if sink[l][i]:
                lines.append(f'{name(l, i)} = "{rng.choice(rewards)}"')
    for (l, i), ch in children.items():
        pri = composition(rng, len(ch), big=(l == 0))
        post = composition(rng, len(ch), big=(l == 0)) if rng.random() < args.posterior_prob else None
        for n, (m, j) in enumerate(ch):
            lines += ["", "[[edge]]", f'from = "{name(l, i)}"', f'to = "{name(m, j)}"',
                      f'prior = "{fmt(pri[n])}"']
            if post is not None:
                lines.append(f'posterior = "{fmt(post[n])}"')
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=28)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="-", help="output file ('-' = stdout)")
    ap.add_argument("--name", default="generated")
    ap.add_argument("--beta", default="2")
    ap.add_argument("--rewards", choices=sorted(REWARDS), default="mixed")
    ap.add_argument("--max-out", type=int, default=3)
    ap.add_argument("--band", type=int, default=2, help="children are chosen within +-band positions")
    ap.add_argument("--skip-prob", type=float, default=0.15)
    ap.add_argument("--sink-prob", type=float, default=0.1)
    ap.add_argument("--posterior-prob", type=float, default=0.8)
    args = ap.parse_args()
    if args.layers < 1 or args.width < 1 or args.max_out < 1:
        ap.error("--layers, --width and --max-out must be >= 1")
    text = generate(args)
    spec = spec_model.loads(text, args.out)  # raises on an invalid result
    info = (f"{args.out}: states {len(spec.states)}, edges {len(spec.edges)}, "
            f"terminals {len(spec.sinks)}, trajectories {spec.trajectory_count()}")
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)
    print(info, file=sys.stderr)


if __name__ == "__main__":
    main()
