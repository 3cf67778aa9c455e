#!/usr/bin/env bash
# Creates .venv and installs emohead with its dev tools; safe to rerun (pip skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip_install() {
  # This machine's pip config lists local indexes that may be absent; their warnings are noise.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
pip_install --upgrade pip
# torch first and pinned: anything unpinned would pull a multi-GB CUDA build.
pip_install -c constraints.txt torch==2.13.0
pip_install -c constraints.txt -e '.[dev]'
echo "emohead installed into .venv"
