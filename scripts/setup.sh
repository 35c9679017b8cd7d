#!/usr/bin/env bash
# Creates .venv in the repo root if missing and installs requirements.txt into it, once per change of
# requirements.txt (a stamp in .venv records what was installed). Sourced by run.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "error: Python 3.11 is needed ($PYTHON is $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV …" >&2
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANTED="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANTED" ]; then
  echo "Installing requirements.txt into $VENV (the first time takes a few minutes) …" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt"
  echo "$WANTED" > "$STAMP"
fi
