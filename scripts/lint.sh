#!/usr/bin/env bash
# Lint, format check and type check (the rule set is justified in README.md's "Lint and types"); run by test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/.venv/bin/ruff" check --quiet .
"$ROOT/.venv/bin/ruff" format --check --quiet .
"$ROOT/.venv/bin/mypy" --no-error-summary
echo "lint: ruff and mypy found nothing" >&2
