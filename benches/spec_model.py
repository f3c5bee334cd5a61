"""Spec-file model and validator (Python mirror of the Rust loader's rules).

Used by `sympy_reference.py` (to load a spec), by `gen_spec.py` (to check what it writes) and
by `check_corpus.py` (to check that every file in `spec/` is valid and that every file in
`tests/invalid/` is refused, for exactly one reason, naming the field listed in
`tests/invalid/EXPECTED.toml`).

Rules (see issue 3 and DESIGN §1):
  * top-level keys: name, beta, source (strings, required), rewards (table of strings),
    edge (array of tables, at least one); nothing else;
  * edge keys: from, to, prior (required), posterior (optional); nothing else;
  * rationals are strings "n" or "n/d" (optional leading '-', digits only, d != 0);
    beta > 0, 0 < prior <= 1, 0 < posterior <= 1, reward > 0;
  * no duplicate edge, no self-loop, no cycle, no edge into the source, the source is a state
    of the graph, every state reachable from the source and able to reach a sink;
  * every sink has a reward, nothing else has one;
  * per state: priors sum to exactly 1; posteriors given on all edges or none, and then sum to
    exactly 1.
Edge-level errors name the edge as `from->to`, state-level errors the state, key-level errors
the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction

# The loader's one grammar (src/exact/rational.rs): [-]digits[/digits] or [-]digits.digits,
# at most MAX_DIGITS digits per integer.
RATIONAL_RE = re.compile(r"^-?[0-9]+((/[0-9]+)|(\.[0-9]+))?$")
MAX_DIGITS = 10_000
MAX_NAME_BYTES = 256
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def name_problem(name: str) -> str | None:
    """Why a state or spec name is refused (src/dag/spec.rs check_name), or None."""
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"name {name!r} is over the limit of {MAX_NAME_BYTES} bytes"
    for c in name:
        if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) or c in BIDI:
            return f"name {name!r} holds the control character U+{ord(c):04X}"
    return None
TOP_KEYS = {"name", "beta", "source", "rewards", "edge"}
EDGE_KEYS = {"from", "to", "prior", "posterior"}


class SpecError(Exception):
    """All problems found in one file (a list of messages); str() joins them."""

    def __init__(self, path: str, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__("\n".join(f"{path}: {e}" for e in errors))


def parse_rational(text) -> Fraction | None:
    if not isinstance(text, str) or not RATIONAL_RE.match(text):
        return None
    if any(len(part.lstrip("-")) > MAX_DIGITS for part in re.split(r"[/.]", text)):
        return None
    if "/" in text:
        n, d = text.split("/")
        if int(d) == 0:
            return None
        return Fraction(int(n), int(d))
    if "." in text:
        return Fraction(text)
    return Fraction(int(text))


@dataclass
class Edge:
    src: str
    dst: str
    prior: Fraction
    posterior: Fraction | None

    @property
    def label(self) -> str:
        return f"{self.src}->{self.dst}"


@dataclass
class Spec:
    path: str
    name: str
    beta: Fraction
    source: str
    rewards: dict[str, Fraction]
    edges: list[Edge]
    states: list[str] = field(default_factory=list)  # topological order, source first
    children: dict[str, list[int]] = field(default_factory=dict)  # state -> edge indices
    parents: dict[str, list[int]] = field(default_factory=dict)

    def is_sink(self, s: str) -> bool:
        return not self.children[s]

    @property
    def sinks(self) -> list[str]:
        return [s for s in self.states if self.is_sink(s)]

    def q(self, i: int) -> Fraction:
        """The concrete posterior of edge i: the given one, or uniform over its state's edges."""
        e = self.edges[i]
        if e.posterior is not None:
            return e.posterior
        return Fraction(1, len(self.children[e.src]))

    def trajectory_count(self) -> int:
        count = {s: 0 for s in self.states}
        count[self.source] = 1
        for s in self.states:
            for i in self.children[s]:
                count[self.edges[i].dst] += count[s]
        return sum(count[x] for x in self.sinks)


def load(path: str) -> Spec:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(path, ["the file is not valid UTF-8"]) from None
    return loads(text, path)


def loads(text: str, path: str = "<string>") -> Spec:
    errs: list[str] = []
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # message ends with "(at line N, column M)"
        raise SpecError(path, [f"TOML syntax error: {e}"]) from None

    for k in doc:
        if k not in TOP_KEYS:
            errs.append(f"unknown top-level key `{k}`")
    for k in ("name", "beta", "source"):
        if k not in doc:
            errs.append(f"missing required key `{k}`")
        elif not isinstance(doc[k], str):
            errs.append(f"`{k}` must be a string, got {doc[k]!r}")
    beta = None
    if isinstance(doc.get("beta"), str):
        beta = parse_rational(doc["beta"])
        if beta is None:
            errs.append(f"`beta`: malformed rational {doc['beta']!r}")
        elif beta <= 0:
            errs.append(f"`beta` must be positive, got {doc['beta']!r}")

    rewards: dict[str, Fraction] = {}
    raw_rewards = doc.get("rewards", {})
    if not isinstance(raw_rewards, dict):
        errs.append("`rewards` must be a table")
        raw_rewards = {}
    for s, v in raw_rewards.items():
        r = parse_rational(v)
        if r is None:
            errs.append(f"reward of `{s}`: malformed rational {v!r}")
        elif r <= 0:
            errs.append(f"reward of `{s}` must be positive, got {v!r}")
        else:
            rewards[s] = r

    edges: list[Edge] = []
    raw_edges = doc.get("edge")
    if raw_edges is None:
        errs.append("missing required key `edge` (at least one [[edge]])")
        raw_edges = []
    elif not isinstance(raw_edges, list) or not all(isinstance(e, dict) for e in raw_edges):
        errs.append("`edge` must be an array of tables ([[edge]])")
        raw_edges = []
    seen: set[tuple[str, str]] = set()
    for k, e in enumerate(raw_edges):
        src, dst = e.get("from"), e.get("to")
        label = f"{src}->{dst}" if isinstance(src, str) and isinstance(dst, str) else f"edge #{k + 1}"
        for key in e:
            if key not in EDGE_KEYS:
                errs.append(f"edge {label}: unknown key `{key}`")
        bad = False
        for key in ("from", "to", "prior"):
            if key not in e:
                errs.append(f"edge {label}: missing required key `{key}`")
                bad = True
            elif not isinstance(e[key], str):
                errs.append(f"edge {label}: `{key}` must be a string, got {e[key]!r}")
                bad = True
        prior = parse_rational(e.get("prior")) if isinstance(e.get("prior"), str) else None
        if isinstance(e.get("prior"), str):
            if prior is None:
                errs.append(f"edge {label}: prior: malformed rational {e['prior']!r}")
                bad = True
            elif not (0 < prior <= 1):
                errs.append(f"edge {label}: prior must be in (0, 1], got {e['prior']!r}")
                bad = True
        post = None
        if "posterior" in e:
            post = parse_rational(e["posterior"]) if isinstance(e["posterior"], str) else None
            if post is None:
                errs.append(f"edge {label}: posterior: malformed rational {e['posterior']!r}")
                bad = True
            elif not (0 < post <= 1):
                errs.append(f"edge {label}: posterior must be in (0, 1], got {e['posterior']!r}")
                bad = True
        if isinstance(src, str) and isinstance(dst, str):
            if (src, dst) in seen:
                errs.append(f"edge {label}: duplicate edge")
                bad = True
            seen.add((src, dst))
            if src == dst:
                errs.append(f"edge {label}: self-loop")
                bad = True
        if not bad:
            edges.append(Edge(src, dst, prior, post))
    names = [doc.get("name"), doc.get("source"), *raw_rewards.keys()]
    names += [e.get(k) for e in raw_edges for k in ("from", "to")]
    for n in dict.fromkeys(x for x in names if isinstance(x, str)):
        problem = name_problem(n)
        if problem:
            errs.append(problem)
    if errs:
        raise SpecError(path, errs)

    source = doc["source"]
    spec = Spec(path, doc["name"], beta, source, rewards, edges)
    states: list[str] = []
    for e in edges:
        for s in (e.src, e.dst):
            if s not in spec.children:
                spec.children[s] = []
                spec.parents[s] = []
                states.append(s)
    for i, e in enumerate(edges):
        spec.children[e.src].append(i)
        spec.parents[e.dst].append(i)

    if source not in spec.children:
        raise SpecError(path, [f"source `{source}` is not a state of the graph"])
    for i in spec.parents[source]:
        errs.append(f"edge {edges[i].label}: an edge into the source `{source}`")

    # Cycles (Kahn's algorithm): whatever is left is on or behind a cycle.
    indeg = {s: len(spec.parents[s]) for s in states}
    order = [s for s in states if indeg[s] == 0]
    head = 0
    while head < len(order):
        s = order[head]
        head += 1
        for i in spec.children[s]:
            t = edges[i].dst
            indeg[t] -= 1
            if indeg[t] == 0:
                order.append(t)
    if len(order) < len(states):
        left = set(states) - set(order)
        # Report one cycle: walk within `left` until a state repeats.
        s = next(x for x in states if x in left)
        path_, pos = [], {}
        while s not in pos:
            pos[s] = len(path_)
            path_.append(s)
            s = next(edges[i].dst for i in spec.children[s] if edges[i].dst in left)
        cyc = path_[pos[s]:] + [s]
        errs.append("cycle " + "->".join(cyc))

    # Reachability from the source and co-reachability to a sink.
    reach, stack = {source}, [source]
    while stack:
        s = stack.pop()
        for i in spec.children[s]:
            if edges[i].dst not in reach:
                reach.add(edges[i].dst)
                stack.append(edges[i].dst)
    sinks = [s for s in states if not spec.children[s]]
    coreach, stack = set(sinks), list(sinks)
    while stack:
        s = stack.pop()
        for i in spec.parents[s]:
            if edges[i].src not in coreach:
                coreach.add(edges[i].src)
                stack.append(edges[i].src)
    for s in states:
        if s not in reach:
            errs.append(f"state `{s}` is unreachable from the source `{source}`")
        if s not in coreach:
            errs.append(f"state `{s}` cannot reach any terminal state")

    for s in sinks:
        if s not in rewards and s not in raw_rewards:
            errs.append(f"sink `{s}` has no reward")
    for s in raw_rewards:
        if s not in spec.children:
            errs.append(f"reward on `{s}`, which is not a state of the graph")
        elif spec.children[s]:
            errs.append(f"reward on `{s}`, which is not a sink (it has outgoing edges)")

    for s in states:
        ch = spec.children[s]
        if not ch:
            continue
        tot = sum((edges[i].prior for i in ch), Fraction(0))
        if tot != 1:
            errs.append(f"state `{s}`: priors sum to {tot}, not 1")
        given = [edges[i].posterior is not None for i in ch]
        if any(given) and not all(given):
            missing = [edges[i].label for i in ch if edges[i].posterior is None]
            errs.append(f"state `{s}`: posterior given on some edges only (missing on {', '.join(missing)})")
        elif all(given):
            tot = sum((edges[i].posterior for i in ch), Fraction(0))
            if tot != 1:
                errs.append(f"state `{s}`: posteriors sum to {tot}, not 1")
    if errs:
        raise SpecError(path, errs)
    spec.states = order
    return spec
