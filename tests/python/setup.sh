#!/usr/bin/env bash
# Creates the virtualenv the Python interop test uses (idempotent).
# Usage: tests/python/setup.sh [VENV_DIR]   (default: target/python-venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${1:-$root/target/python-venv}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import fastapi, uvicorn, asgi_correlation_id, httpx" 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
