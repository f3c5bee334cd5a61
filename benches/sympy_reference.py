#!/usr/bin/env python3
"""Reference implementation, in sympy, of the exact checks C1-C5 on one or more spec files.

Outside CI: it is the yardstick for `benches/exact.rs` (same DAG, same checks; the Rust engine
should be >= 100x faster). Every decision is exact: sympy.Rational arithmetic, symbols for the
learned quantities, sympy.log of rationals kept as exact atoms; no floats anywhere in a decision
(floats appear only in the printed `approx` values). Route: STRUCTURAL, no trajectory
enumeration, so it runs on DAGs of 10^4 edges and more:

  C1  per edge e = (s -> s'), alpha = 1/beta, symbol l_e = log q(e), symbol logZ:
        TPCL step  r_e - alpha*l_e + alpha*log p_e   (r_e = log r(s') if s' is a sink, else 0)
        equals -alpha * RTB step  l_e - log p_e - [s' sink]*beta*log r(s');
      boundary -V(s0) = -alpha*logZ with V(s0) = alpha*logZ; telescoping lemma on a generic
      path of every trajectory length that occurs (sum of steps + boundary = C + alpha*delta).
  C4  per state, symbol logF(s), V(s) = alpha*logF(s): start boundary -V(s) + alpha*logF(s) = 0,
      end boundary V(s) - alpha*logF(s) = 0 (non-sinks), 0 - alpha*beta*log r(x) = -log r(x)
      (sinks); per edge TPCL step + alpha*(l_e - log p_e) = [s' sink]*log r(s'); window lemma.
  C2/C3 on the generic trajectory (symbols Sq, Sp, R, logZ, V0), then again with
      R = log r(x) for every terminal x: 1/2 C^2 = alpha^2 * 1/2 delta^2; d/dSq and d/dlogZ
      (alpha^2, shared scalar V(s0) = alpha*logZ); d/dV0 at V0 = alpha*logZ = alpha*delta
      (independent scalar); surrogate -sg(C)*Sq has d/dSq = alpha*delta; and per state the
      tabular softmax l_a = theta_a - log sum_c exp theta_c at theta = log q: every
      d(1/2 C^2)/d theta_b = alpha^2 d(1/2 delta^2)/d theta_b.
  C5  only if every r(x)^beta is rational (beta = n/d: exact d-th roots), else `skipped`:
      F*(x) = r^beta, F*(s) = sum p F*(s') backwards, q* = p F*(s')/F*(s), Z* = F*(s0);
      per state sum q* = 1; per edge the rational q* F*(s) / (p F*(s')) == 1 and the log
      expression log q* - log p - log F*(s') + log F*(s) decided = 0 (logcombine, or
      sympy.simplify with --simplify); at the optimum every per-edge delta and C step is 0;
      J(q*) = alpha log Z*; KL(q || q*) = log Z* - beta J(q) at the spec's q (posterior, else
      uniform), occupancies by forward DP.
      In J and KL (sums weighted by big occupancy rationals) the default route `atoms` rewrites
      log q*(e) = log p(e) + log F*(s') - log F*(s) (the per-edge certificate just checked) and
      keeps each log F*(s) as one exact atom, so the F* atoms cancel by flow conservation and
      only logs of small rationals (p, q, r, r^beta) are rewritten over the primes (factorint).
      `--route naive` instead takes sympy.log(q*) of every q* as it comes and rewrites every log
      atom over the primes, big F* numerators included (what a plain sympy user would write;
      factoring 10^1..10^60-sized numbers makes it slow on large DAGs).
  Deciding "= 0": sympy.expand; for a symbol-free sum of c_i log a_i, clear the denominators of
  the c_i and logcombine into one log of a rational (0 iff that rational is 1); else rewrite
  the log atoms over the primes (sympy.factorint) and expand. Note that sympy.expand_log(...,
  force=True) alone is NOT canonical (it splits p/q and perfect powers but leaves log(12)
  alone), so it is not used to decide anything. `--simplify` decides with
  sympy.simplify(expand_log(e, force=True)) first (slow), confirming a non-zero with factorint.

Usage:
  python3 benches/sympy_reference.py spec/diamond.toml [more.toml ...] [--json]
      [--limit-seconds S] [--route atoms|naive] [--simplify]
Exit status: 0 all hold, 1 some check failed, 2 bad input, 3 stopped by --limit-seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec_model  # noqa: E402

import sympy as sp  # noqa: E402

Rat = sp.Rational


class OutOfTime(Exception):
    pass


class Checker:
    def __init__(self, spec: spec_model.Spec, deadline: float | None, route: str, use_simplify: bool):
        self.spec = spec
        self.deadline = deadline
        self.route = route
        self.use_simplify = use_simplify
        self.beta = Rat(spec.beta.numerator, spec.beta.denominator)
        self.alpha = 1 / self.beta
        self.logZ = sp.Symbol("logZ")
        self.sink = {s: spec.is_sink(s) for s in spec.states}
        self.p = [Rat(e.prior.numerator, e.prior.denominator) for e in spec.edges]
        self.q = [Rat(spec.q(i).numerator, spec.q(i).denominator) for i in range(len(spec.edges))]
        self.r = {x: Rat(v.numerator, v.denominator) for x, v in spec.rewards.items()}
        self.logr = {x: sp.log(v) for x, v in self.r.items()}
        self.logp = [sp.log(v) for v in self.p]
        self.ell = [sp.Symbol(f"l[{e.label}]") for e in spec.edges]
        self.results: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        self.progress = ""
        self.extra: dict = {}
        self._fcache: dict = {}

    # ---------------------------------------------------------------- helpers
    def tick(self, where: str):
        self.progress = where
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise OutOfTime(where)

    def canon(self, expr):
        """Rewrite every log(rational) atom over the primes (sympy.factorint, cached): canonical,
        since the logs of distinct primes are linearly independent over Q. Exact but it factors
        every number it meets, big ones included (checks the deadline between factorizations)."""
        atoms = [x for x in expr.atoms(sp.log) if x.args[0].is_Rational]
        rep = {}
        for k, x in enumerate(atoms):
            a = x.args[0]
            if a not in self._fcache:
                if k % 8 == 0:
                    self.tick(f"{self.progress.split(' [')[0]} [factoring log atoms {k}/{len(atoms)}]")
                out = sp.Integer(0)
                for pr, e in sp.factorint(a.p).items():
                    out += e * sp.log(pr)
                for pr, e in sp.factorint(a.q).items():
                    out -= e * sp.log(pr)
                self._fcache[a] = out
            rep[x] = self._fcache[a]
        return sp.expand(expr.xreplace(rep))

    def zero(self, expr) -> bool:
        """Exact decision of expr == 0 for polynomial expressions in symbols and logs of rationals."""
        e = sp.expand(expr)
        if e == 0:
            return True
        if self.use_simplify:
            return sp.simplify(sp.expand_log(e, force=True)) == 0 or self.canon(e) == 0
        if not e.free_symbols:
            # sum of c_i log a_i: clear denominators of the c_i, combine into one log (exact).
            d = 1
            for _, c in e.as_coefficients_dict().items():
                if c.is_Rational:
                    d = sp.ilcm(d, c.q)
            comb = sp.logcombine(sp.expand(d * e), force=True).doit()
            if comb == 0:
                return True
        return self.canon(e) == 0

    def lengths(self) -> list[int]:
        """All trajectory lengths that occur (DP over sets of lengths)."""
        spec = self.spec
        L = {s: set() for s in spec.states}
        L[spec.source] = {0}
        for s in spec.states:
            for i in spec.children[s]:
                L[spec.edges[i].dst] |= {n + 1 for n in L[s]}
        out = set()
        for x in spec.sinks:
            out |= L[x]
        return sorted(out)

    def record(self, cid, holds, checked, summary, skipped=None, failures=None):
        self.results[cid] = {"id": cid, "holds": holds, "checked": checked, "skipped": skipped,
                             "summary": summary, "failures": (failures or [])[:5]}

    # ---------------------------------------------------------------- C1
    def c1(self):
        spec, a, b = self.spec, self.alpha, self.beta
        fails, n = [], 0
        for i, e in enumerate(spec.edges):
            if i % 256 == 0:
                self.tick(f"C1 edge {i}/{len(spec.edges)}")
            sink = self.sink[e.dst]
            r_e = self.logr[e.dst] if sink else 0
            tpcl = r_e - a * self.ell[i] + a * self.logp[i]
            rtb = self.ell[i] - self.logp[i] - (b * self.logr[e.dst] if sink else 0)
            if not self.zero(tpcl - (-a * rtb)):
                fails.append(f"edge {e.label}: {sp.expand(tpcl + a * rtb)}")
            n += 1
        V0 = a * self.logZ
        if not self.zero(-V0 - (-a * self.logZ)):
            fails.append("boundary -V(s0) != -alpha logZ")
        n += 1
        lens = self.lengths()
        for T in lens:
            self.tick(f"C1 lemma T={T}")
            l = sp.symbols(f"l0:{T}")
            P = sp.symbols(f"P0:{T}")
            R = sp.Symbol("R")
            C = -V0 + sum(-a * l[k] + a * P[k] for k in range(T)) + R + 0  # V(x) = 0
            delta = self.logZ + sum(l) - sum(P) - b * R
            steps = sum((R if k == T - 1 else 0) - a * l[k] + a * P[k] + a * (l[k] - P[k] - (b * R if k == T - 1 else 0))
                        for k in range(T))
            if not (self.zero(C + a * delta) and self.zero(steps)):
                fails.append(f"telescoping lemma, length {T}")
            n += 1
        self.record("C1", not fails, n,
                    f"{len(spec.edges)} edge steps TPCL = -alpha RTB, boundary, telescoping for lengths "
                    f"{lens[0]}..{lens[-1]} ({len(lens)} lengths)", failures=fails)

    # ---------------------------------------------------------------- C4
    def c4(self):
        spec, a, b = self.spec, self.alpha, self.beta
        fails, n = [], 0
        logF = {s: sp.Symbol(f"logF[{s}]") for s in spec.states}
        for k, s in enumerate(spec.states):
            if k % 256 == 0:
                self.tick(f"C4 state {k}/{len(spec.states)}")
            V = 0 if self.sink[s] else a * logF[s]
            if not self.sink[s]:
                if not self.zero(-V + a * logF[s]):
                    fails.append(f"start boundary {s}")
                n += 1
            if s != spec.source:
                if self.sink[s]:
                    ok = self.zero((0 - a * (b * self.logr[s])) - (-self.logr[s]))
                else:
                    ok = self.zero(V - a * logF[s])
                if not ok:
                    fails.append(f"end boundary {s}")
                n += 1
        for i, e in enumerate(spec.edges):
            if i % 256 == 0:
                self.tick(f"C4 edge {i}/{len(spec.edges)}")
            sink = self.sink[e.dst]
            r_e = self.logr[e.dst] if sink else 0
            tpcl = r_e - a * self.ell[i] + a * self.logp[i]
            if not self.zero(tpcl + a * (self.ell[i] - self.logp[i]) - r_e):
                fails.append(f"edge {e.label}")
            n += 1
        # Window lemma: C_{i:j} + alpha delta_{i:j} = start + sum(edge terms) + end, for every
        # window length up to the longest trajectory, ending at a non-sink or at a sink.
        lens = self.lengths()
        Fi, Fj, R = sp.symbols("Fi Fj R")
        for T in range(1, lens[-1] + 1):
            self.tick(f"C4 lemma T={T}")
            l = sp.symbols(f"l0:{T}")
            P = sp.symbols(f"P0:{T}")
            for end_sink in (False, True):
                Vj = 0 if end_sink else a * Fj
                logFj = b * R if end_sink else Fj
                rT = R if end_sink else 0
                C = -a * Fi + Vj + sum((rT if k == T - 1 else 0) - a * l[k] + a * P[k] for k in range(T))
                delta = Fi + sum(l) - sum(P) - logFj
                if not self.zero(C + a * delta):
                    fails.append(f"window lemma, length {T}, end at {'sink' if end_sink else 'non-sink'}")
                n += 1
        self.record("C4", not fails, n,
                    f"{len(spec.states)} states (boundaries), {len(spec.edges)} edge steps, window lemma "
                    f"for lengths 1..{lens[-1]}", failures=fails)

    # ---------------------------------------------------------------- C2 / C3
    def generic(self, R_value):
        a, b = self.alpha, self.beta
        Sq, Sp, R, V0 = sp.symbols("Sq Sp R V0")
        logZ = self.logZ
        delta = logZ + Sq - Sp - b * R
        C = -a * logZ + R - a * Sq + a * Sp          # sum of the per-step RL terms, V(s0) = alpha logZ
        Cv = -V0 + R - a * Sq + a * Sp               # V(s0) as its own parameter
        sub = (lambda ex: ex) if R_value is None else (lambda ex: ex.subs(R, R_value))
        Lt, Lr = sp.Rational(1, 2) * C ** 2, sp.Rational(1, 2) * delta ** 2
        checks = {
            "C2 loss 1/2C^2 = alpha^2 1/2delta^2": sub(Lt - a ** 2 * Lr),
            "C3 d/dSq (theta) alpha^2": sub(sp.diff(Lt, Sq) - a ** 2 * sp.diff(Lr, Sq)),
            "C3 d/dlogZ alpha^2": sub(sp.diff(Lt, logZ) - a ** 2 * sp.diff(Lr, logZ)),
            "C3 d/dV0 = alpha d/dlogZ": sub(sp.diff(sp.Rational(1, 2) * Cv ** 2, V0).subs(V0, a * logZ)
                                            - a * sp.diff(Lr, logZ)),
            "C3 surrogate -sg(C) Sq: alpha": sub(-C - a * sp.diff(Lr, Sq)),
        }
        return {k: self.zero(v) for k, v in checks.items()}

    def c2c3(self):
        spec, a = self.spec, self.alpha
        res2, res3 = [], []
        n2 = n3 = 0
        for x in [None] + spec.sinks:
            self.tick(f"C2/C3 terminal {x}")
            for k, ok in self.generic(None if x is None else self.logr[x]).items():
                tag = f"{k} [{'generic R' if x is None else 'R = log r(' + x + ')'}]"
                if k.startswith("C2"):
                    n2 += 1
                    if not ok:
                        res2.append(tag)
                else:
                    n3 += 1
                    if not ok:
                        res3.append(tag)
        # Tabular softmax at the concrete q, per state: l_a = theta_a - log sum exp theta_c.
        Srest, Sp, R = sp.symbols("Srest Sp R")
        nsoft = 0
        for k, s in enumerate(spec.states):
            ch = spec.children[s]
            if not ch:
                continue
            if k % 64 == 0:
                self.tick(f"C3 softmax state {k}/{len(spec.states)}")
            th = [sp.Symbol(f"th{j}") for j in range(len(ch))]
            lse = sp.log(sp.Add(*[sp.exp(t) for t in th]))
            at_q = {th[j]: sp.log(self.q[i]) for j, i in enumerate(ch)}
            for ja in range(len(ch)):
                ell = th[ja] - lse
                Sq = Srest + ell
                delta = self.logZ + Sq - Sp - self.beta * R
                C = -a * self.logZ + R - a * Sq + a * Sp
                for jb in range(len(ch)):
                    dt = sp.diff(sp.Rational(1, 2) * C ** 2, th[jb]).xreplace(at_q)
                    dr = sp.diff(sp.Rational(1, 2) * delta ** 2, th[jb]).xreplace(at_q)
                    # the Jacobian entry itself must be the rational 1[a=b] - q(b|s)
                    jac = sp.diff(ell, th[jb]).xreplace(at_q)
                    want = (1 if ja == jb else 0) - self.q[ch[jb]]
                    if not (self.zero(dt - a ** 2 * dr) and (jac == want or sp.simplify(jac - want) == 0)):
                        res3.append(f"softmax d/dtheta[{spec.edges[ch[jb]].label}] via {spec.edges[ch[ja]].label}")
                    nsoft += 1
        self.record("C2", not res2, n2, f"loss identity on the generic trajectory and {len(spec.sinks)} terminals",
                    failures=res2)
        self.record("C3", not res3, n3 + nsoft,
                    f"5 gradient factors on the generic trajectory and {len(spec.sinks)} terminals; "
                    f"{nsoft} softmax partials at the concrete q", failures=res3)

    # ---------------------------------------------------------------- C5
    def c5(self):
        spec, a, b = self.spec, self.alpha, self.beta
        n, d = b.p, b.q
        Fstar = {}
        irr = []
        for x in spec.sinks:
            r = self.r[x]
            rn, okn = sp.integer_nthroot(r.p ** n, d)
            rd, okd = sp.integer_nthroot(r.q ** n, d)
            if okn and okd:
                Fstar[x] = Rat(rn, rd)
            else:
                irr.append(f"{x} (r = {r})")
        if irr:
            self.record("C5", None, 0, "skipped", skipped=f"r(x)^beta is irrational for beta = {b} at "
                        + ", ".join(irr[:5]) + (" ..." if len(irr) > 5 else ""))
            return
        fails, cnt = [], 0
        for k, s in enumerate(reversed(spec.states)):
            if k % 256 == 0:
                self.tick(f"C5 F* state {k}/{len(spec.states)}")
            if not self.sink[s]:
                Fstar[s] = sp.Add(*[self.p[i] * Fstar[spec.edges[i].dst] for i in spec.children[s]])
        qs = [self.p[i] * Fstar[e.dst] / Fstar[e.src] for i, e in enumerate(spec.edges)]
        Z = Fstar[spec.source]
        # atoms: log F*(s); at sinks F*(x) = r^beta, a small rational, rewritten over the primes
        logF = {}
        for s in spec.states:
            logF[s] = self.canon(sp.log(Fstar[s])) if self.sink[s] else sp.log(Fstar[s])
        for s in spec.states:
            if not self.sink[s]:
                if sp.Add(*[qs[i] for i in spec.children[s]]) != 1:
                    fails.append(f"sum of q* at {s}")
                cnt += 1
        for i, e in enumerate(spec.edges):
            if i % 128 == 0:
                self.tick(f"C5 edge {i}/{len(spec.edges)}")
            if qs[i] * Fstar[e.src] / (self.p[i] * Fstar[e.dst]) != 1:
                fails.append(f"rational q* certificate {e.label}")
            lq = sp.log(qs[i])
            expr = lq - self.logp[i] - sp.log(Fstar[e.dst]) + sp.log(Fstar[e.src])
            if not self.zero(expr):
                fails.append(f"log q* certificate {e.label}")
            # zeros at the optimum: delta step (log F window of length 1) and the C step with V*
            Vs = a * sp.log(Fstar[e.src])
            Vd = 0 if self.sink[e.dst] else a * sp.log(Fstar[e.dst])
            logFd = b * self.logr[e.dst] if self.sink[e.dst] else sp.log(Fstar[e.dst])
            dstep = sp.log(Fstar[e.src]) + lq - self.logp[i] - logFd
            r_e = self.logr[e.dst] if self.sink[e.dst] else 0
            cstep = -Vs + r_e - a * lq + a * self.logp[i] + Vd
            if not self.zero(dstep):
                fails.append(f"delta window at q* {e.label}")
            if not self.zero(cstep):
                fails.append(f"C window at q*, V* {e.label}")
            cnt += 4
        self.tick("C5 occupancies")

        def occupancy(qv):
            occ = {s: Rat(0) for s in spec.states}
            occ[spec.source] = Rat(1)
            for s in spec.states:
                for i in spec.children[s]:
                    occ[spec.edges[i].dst] += occ[s] * qv[i]
            return occ

        def log_qstar(i):
            e = spec.edges[i]
            if self.route == "naive":
                return sp.log(qs[i])
            return self.logp[i] + logF[e.dst] - logF[e.src]

        def finish(expr):
            e = sp.expand(expr)
            return e == 0 or self.canon(e) == 0

        logZ_star = logF[spec.source]
        # J(q*) = alpha log Z*
        occs = occupancy(qs)
        if sp.Add(*[occs[x] for x in spec.sinks]) != 1:
            fails.append("terminal occupancy under q* does not sum to 1")
        self.tick("C5 J(q*)")
        terms = [occs[x] * self.logr[x] for x in spec.sinks]
        for s in spec.states:
            for i in spec.children[s]:
                terms.append(-a * occs[s] * qs[i] * (log_qstar(i) - self.logp[i]))
        Jstar = sp.Add(*terms)
        if not finish(Jstar - a * logZ_star):
            fails.append("J(q*) != alpha log Z*")
        cnt += 1
        # KL(q || q*) = log Z* - beta J(q) at the spec's q
        self.tick("C5 KL")
        occ = occupancy(self.q)
        if sp.Add(*[occ[x] for x in spec.sinks]) != 1:
            fails.append("terminal occupancy under q does not sum to 1")
        logq = {}
        jt, kt = [occ[x] * self.logr[x] for x in spec.sinks], []
        for s in spec.states:
            for i in spec.children[s]:
                lq = logq.setdefault(self.q[i], sp.log(self.q[i]))
                jt.append(-a * occ[s] * self.q[i] * (lq - self.logp[i]))
                kt.append(occ[s] * self.q[i] * (lq - log_qstar(i)))
        Jq, KL = sp.Add(*jt), sp.Add(*kt)
        if not finish(KL - (logZ_star - b * Jq)):
            fails.append("KL(q||q*) != log Z* - beta J(q)")
        cnt += 1
        self.extra = {
            "z_star": str(Z),
            "log_z_star_approx": float(sp.log(Z).evalf(30)),
            "j_q_approx": float(sp.N(Jq, 30)),
            "kl_q_to_qstar_approx": float(sp.N(logZ_star - b * Jq, 60, chop=True)),
        }
        self.record("C5", not fails, cnt,
                    f"Z* = {Z if len(str(Z)) < 60 else str(Z)[:40] + '...'}; {len(spec.edges)} edges "
                    f"(q* certificates, zero delta/C steps), J(q*) = alpha log Z*, KL identity", failures=fails)

    def run(self):
        for cid, fn in (("C1", self.c1), ("C4", self.c4), ("C2/C3", self.c2c3), ("C5", self.c5)):
            t = time.perf_counter()
            try:
                fn()
            finally:
                self.seconds[cid] = time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--json", action="store_true", help="one JSON object per file (one per line)")
    ap.add_argument("--limit-seconds", type=float, default=None,
                    help="stop gracefully after this many seconds per file, reporting how far it got")
    ap.add_argument("--route", choices=["atoms", "naive"], default="atoms")
    ap.add_argument("--simplify", action="store_true",
                    help="decide every log identity with sympy.simplify(expand_log(...)) (slow)")
    args = ap.parse_args()
    status = 0
    for path in args.specs:
        t0 = time.perf_counter()
        try:
            spec = spec_model.load(path)
        except (spec_model.SpecError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            status = max(status, 2)
            continue
        t_load = time.perf_counter() - t0
        deadline = None if args.limit_seconds is None else t0 + args.limit_seconds
        ck = Checker(spec, deadline, args.route, args.simplify)
        stopped = None
        try:
            ck.run()
        except OutOfTime as e:
            stopped = str(e)
        total = time.perf_counter() - t0
        holds = [r["holds"] for r in ck.results.values()]
        all_hold = stopped is None and all(h is not False for h in holds)
        if stopped:
            status = max(status, 3)
        elif not all_hold:
            status = max(status, 1)
        secs = {"load": round(t_load, 4), **{k: round(v, 4) for k, v in ck.seconds.items()}}
        if args.json:
            print(json.dumps({
                "file": path, "name": spec.name, "beta": str(spec.beta), "states": len(spec.states),
                "edges": len(spec.edges), "terminals": len(spec.sinks), "route": args.route,
                "simplify": args.simplify, "seconds_total": round(total, 4), "seconds": secs,
                "all_hold": all_hold, "stopped": stopped, "claims": list(ck.results.values()), **ck.extra,
            }))
            continue
        print(f"== {path}  ({spec.name}: beta = {spec.beta}, {len(spec.states)} states, {len(spec.edges)} edges, "
              f"{len(spec.sinks)} terminals; route {args.route}{', simplify' if args.simplify else ''})")
        for cid in ("C1", "C2", "C3", "C4", "C5"):
            r = ck.results.get(cid)
            if r is None:
                print(f"  {cid}: not reached")
                continue
            word = "skipped" if r["holds"] is None else ("holds" if r["holds"] else "FAILS")
            print(f"  {cid}: {word:7s} checked {r['checked']:>7}  {r['skipped'] or r['summary']}")
            for f in r["failures"]:
                print(f"        failure: {f}")
        print("  seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in secs.items()) + f"; total {total:.3f}")
        if ck.extra:
            print(f"  Z* = {ck.extra['z_star'] if len(ck.extra['z_star']) < 80 else ck.extra['z_star'][:60] + '...'}"
                  f"  log Z* ~ {ck.extra['log_z_star_approx']:.12g}  J(q) ~ {ck.extra['j_q_approx']:.12g}"
                  f"  KL(q||q*) ~ {ck.extra['kl_q_to_qstar_approx']:.12g}")
        if stopped:
            print(f"  STOPPED by --limit-seconds {args.limit_seconds} at: {stopped}")
        else:
            print("  all hold" if all_hold else "  NOT all hold")
    return status


if __name__ == "__main__":
    sys.exit(main())
