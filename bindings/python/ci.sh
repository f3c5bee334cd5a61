#!/usr/bin/env bash
# CI for the Python package: lint the bindings crate, build the wheel with maturin in a
# virtual environment, install it and run the pytest suite. Called by .ci/run from the
# repository root.
#
# The virtual environment lives outside the clone ($RTB_TRUSTPCL_VENV, default
# $HOME/.cache/rtb-trustpcl-venv) and is reused when its stamp matches requirements-ci.txt;
# otherwise (a fresh machine, changed pins, an interrupted install) it is (re)installed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bindings/python"
VENV="${RTB_TRUSTPCL_VENV:-${HOME:-/tmp}/.cache/rtb-trustpcl-venv}"
REQ="$HERE/requirements-ci.txt"
# Share the root's target directory: the core crate's dependencies are already built there.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "bindings/python: $PY not found: a Python >= 3.9 with venv is needed" >&2
  exit 1
fi

t0=$SECONDS
cargo fmt --check --manifest-path "$HERE/Cargo.toml"
cargo clippy --manifest-path "$HERE/Cargo.toml" --all-targets -- -D warnings

stamp="$VENV/.rtb-trustpcl-requirements"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && cmp -s "$REQ" "$stamp"; then
  echo "bindings/python: reusing the virtual environment $VENV"
else
  echo "bindings/python: installing the virtual environment $VENV (numpy, torch, torchgfn, pytest, maturin)"
  t1=$SECONDS
  if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$REQ"
  cp "$REQ" "$stamp"
  echo "bindings/python: virtual environment installed in $((SECONDS - t1)) s"
fi

wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
(cd "$HERE" && "$VENV/bin/maturin" build --release --quiet --interpreter "$VENV/bin/python" --out "$wheels")
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheels"/*.whl

# Run from the tests' directory so that the installed wheel, not the source tree, is tested.
set +e
(cd "$HERE" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests)
rc=$?
set -e
case $rc in
  0) ;;
  5) echo "bindings/python: pytest collected no tests" >&2; exit 1 ;;
  *) echo "bindings/python: pytest failed (exit $rc)" >&2; exit 1 ;;
esac
echo "bindings/python: lint, wheel and tests in $((SECONDS - t0)) s"
