# Shared settings of the CI helper scripts: where the private Docker engine keeps
# its state, and the environment that points the docker CLI at it.
#
# Sourced, not executed. Everything lives under two folders of our own so that no
# other Docker engine on the machine (and its /var/run/docker.sock) is touched.

# Kept between runs on the same machine: the engine's images and build cache, the
# debootstrap tarball, the wheelhouse and the Compose v2 binary.
TWITTER_CI_CACHE="${TWITTER_CI_CACHE:-/var/cache/twitter-system-ci}"
# Gone after a reboot: sockets, pid files, the engine's runtime state.
TWITTER_CI_RUN="${TWITTER_CI_RUN:-/run/twitter-system-ci}"

ENGINE_DATA_ROOT="$TWITTER_CI_CACHE/docker"
ENGINE_EXEC_ROOT="$TWITTER_CI_RUN/exec"
ENGINE_PIDFILE="$TWITTER_CI_RUN/dockerd.pid"
ENGINE_SOCKET="$TWITTER_CI_RUN/docker.sock"
ENGINE_LOG="$TWITTER_CI_RUN/dockerd.log"

# The Compose v2 plugin and the engine address, for every docker command below.
export DOCKER_HOST="unix://$ENGINE_SOCKET"
export DOCKER_CONFIG="$TWITTER_CI_CACHE/docker-config"

# Debian's docker.io installs the CLI as /usr/bin/docker; an older or newer CLI on
# PATH also talks to this engine, because the client negotiates the API version.
DOCKER="${DOCKER:-docker}"

# Every firewall rule we add carries this comment, so that stopping removes ours alone.
FIREWALL_TAG="twitter-system-ci"

COMPOSE_V2_VERSION="2.40.3"

log() {
    printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}
