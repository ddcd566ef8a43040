#!/usr/bin/env bash
# Set up everything the server (and, with --test, the test suite) needs on a fresh machine.
# Idempotent: re-running only installs what is missing.
#   bash setup.sh          runtime dependencies
#   bash setup.sh --test   plus test dependencies
set -euo pipefail
cd "$(dirname "$0")"

want_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' \
  || { echo "Python 3.11+ is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi

requirements=requirements.txt
[ "$want_tests" = 1 ] && requirements=requirements-dev.txt
echo "==> installing Python packages ($requirements)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"

echo "==> ready"
