#!/usr/bin/env bash
# Compiles the Coq development in proofs/ with coqc, refuses Admitted/admit/new axioms, and
# checks that `Print Assumptions` of every main theorem lists only the standard library's
# axioms. With arguments (certificate .v files or directories of them), compiles those too
# against the development. Prints timings. Exit code 0 only when everything is accepted.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! command -v coqc >/dev/null 2>&1; then
  echo "proofs/check.sh: coqc not found (Debian/Ubuntu: apt-get install -y coq)" >&2
  exit 2
fi
echo "proofs: $(coqc --version | head -1)"
# No admitted lemma, no admit, no new axiom/parameter/hypothesis at top level.
if grep -nE '\b(Admitted|admit|Axiom|Axioms|Parameter|Parameters|Conjecture)\b' ./*.v; then
  echo "proofs/check.sh: Admitted/admit/Axiom found" >&2
  exit 1
fi
start=$(date +%s%N)
for f in Trajectory Gradients FixedPoint Certificate; do
  coqc -Q . RTB "$f.v"
done
out="$(coqc -Q . RTB Assumptions.v)"
end=$(date +%s%N)
# The standard library's axioms behind its real numbers (Dedekind construction) and real
# analysis: anything else is refused.
allowed='^(ClassicalDedekindReals\.sig_forall_dec|ClassicalDedekindReals\.sig_not_dec|FunctionalExtensionality\.functional_extensionality_dep|Classical_Prop\.classic)$'
axioms="$(printf '%s\n' "$out" | grep -E '^[A-Za-z_][A-Za-z0-9_.]* *(:|$)' \
  | grep -vE '^(Axioms:|Closed under the global context|== )' | sed -E 's/ *:.*$//' | sort -u)"
bad="$(printf '%s\n' "$axioms" | grep -vE "$allowed" | grep -v '^$' || true)"
theorems=$(grep -c '^Print Assumptions' Assumptions.v)
if [ -n "$bad" ]; then
  echo "proofs/check.sh: unexpected axioms:" >&2
  printf '%s\n' "$bad" >&2
  exit 1
fi
echo "proofs: Print Assumptions (${theorems} groups of main theorems, axiom types omitted):"
printf '%s\n' "$out" | grep -v '^ ' | sed -E 's/ *:.*$//; s/^/  /'
echo "proofs: every axiom is the standard library's:"
printf '  %s\n' $axioms
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
echo "proofs: compiled and checked in $(secs "$start" "$end") s"
# Certificates.
status=0
for arg in "$@"; do
  if [ -d "$arg" ]; then files=("$arg"/*.v); else files=("$arg"); fi
  for cert in "${files[@]}"; do
    [ -e "$cert" ] || { echo "proofs/check.sh: no certificate at $cert" >&2; status=1; continue; }
    t0=$(date +%s%N)
    if (cd "$(dirname "$cert")" && coqc -Q "$here" RTB "$(basename "$cert")"); then
      echo "certificate $cert: accepted in $(secs "$t0" "$(date +%s%N)") s"
    else
      echo "certificate $cert: REJECTED" >&2
      status=1
    fi
  done
done
exit $status
