#!/usr/bin/env bash
# Sets up .venv (idempotent), checks lint, format and types (scripts/lint.sh; LINT=0 skips it) and runs the
# whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
[ "${LINT:-1}" = 0 ] || "$ROOT/scripts/lint.sh"
exec "$VENV/bin/python" -m pytest "$@"
