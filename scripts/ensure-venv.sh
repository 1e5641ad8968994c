#!/usr/bin/env bash
# Create .venv and install the project with the given extras, once per change of pyproject.toml.
# Usage: scripts/ensure-venv.sh EXTRAS (for example "test" or "test,operator,k8s-test"; "" for none)
set -euo pipefail

extras=${1:-}
venv=.venv
stamp="$venv/.installed-$(echo "${extras:-runtime}" | tr ',' '-')"

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "Installing python3-venv" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "python3 cannot create virtual environments: install python3-venv" >&2
        exit 1
    fi
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    target="."
    [ -n "$extras" ] && target=".[$extras]"
    "$venv/bin/python" -m pip install --quiet -e "$target"
    touch "$stamp"
fi
