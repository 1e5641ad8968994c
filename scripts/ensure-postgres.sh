#!/usr/bin/env bash
# Make sure PostgreSQL server binaries are on this machine: the tests start a
# throwaway server from them. Installs Debian's package when run as root.
set -euo pipefail

for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        exit 0
    fi
done

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "PostgreSQL server binaries not found: install your distribution's postgresql package" >&2
    echo "(the PostgreSQL half of the tests is skipped without them, except under CI=true)" >&2
    exit 0
fi
echo "Installing Debian's postgresql package for the tests" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
# The package starts a cluster of its own; the tests never use it.
if command -v pg_ctlcluster >/dev/null; then
    for cluster in /etc/postgresql/*/main; do
        [ -d "$cluster" ] || continue
        version=$(basename "$(dirname "$cluster")")
        pg_ctlcluster "$version" main stop 2>/dev/null || true
    done
fi
