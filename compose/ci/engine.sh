#!/usr/bin/env bash
# Start or stop a private Docker engine for the Compose tests, as root.
#
#   engine.sh start   start dockerd on its own socket, data root and exec root,
#                     with firewall rules that keep container traffic on the machine
#   engine.sh stop    stop that dockerd (by its pid file) and remove our rules
#   engine.sh env     print the variables that point the docker CLI at it
#
# The engine never touches /var/run/docker.sock or another engine's folders. Its
# data root is kept between runs as a build cache; `stop` leaves it in place.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# How long dockerd may take to respond on its socket, and to exit on SIGTERM.
START_TIMEOUT_SECONDS=60
STOP_TIMEOUT_SECONDS=30

engine_pid() {
    [[ -f $ENGINE_PIDFILE ]] || return 1
    local pid
    pid="$(cat "$ENGINE_PIDFILE")"
    # A stale pid file may name an unrelated process by now: check it is our dockerd.
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--exec-root $ENGINE_EXEC_ROOT" || return 1
    echo "$pid"
}

# Drop whatever a container sends off the Docker bridges: to the outside world
# (FORWARD, through DOCKER-USER, which dockerd consults first and keeps as it
# finds it) and to the host itself (INPUT, new connections only, so replies to
# the published port's proxy still arrive). Traffic between bridges stays subject
# to Docker's own isolation rules, which is what the segmentation test checks.
add_firewall_rules() {
    iptables -N DOCKER-USER 2>/dev/null || true
    remove_firewall_rules
    iptables -I DOCKER-USER 1 -i br-+ ! -o br-+ -j DROP -m comment --comment "$FIREWALL_TAG"
    iptables -I INPUT 1 -i br-+ -m conntrack --ctstate NEW -j DROP -m comment --comment "$FIREWALL_TAG"
    if command -v ip6tables >/dev/null; then
        ip6tables -I FORWARD 1 -i br-+ -j DROP -m comment --comment "$FIREWALL_TAG" || true
        ip6tables -I INPUT 1 -i br-+ -j DROP -m comment --comment "$FIREWALL_TAG" || true
    fi
}

remove_firewall_rules() {
    local table chain rule
    for table in iptables ip6tables; do
        command -v "$table" >/dev/null || continue
        for chain in DOCKER-USER INPUT FORWARD; do
            # `-S` prints each rule as the `-A` command that made it; `-D` with the
            # same arguments deletes exactly that rule.
            local rules
            rules="$("$table" -S "$chain" 2>/dev/null || true)"
            while read -r rule; do
                [[ $rule == *"--comment $FIREWALL_TAG"* ]] || continue
                eval "$table ${rule/-A /-D }"
            done <<<"$rules"
        done
    done
}

start_engine() {
    [[ $EUID -eq 0 ]] || die "run as root: dockerd needs it"
    command -v dockerd >/dev/null || die "dockerd not found: run compose/ci/install-tools.sh"

    if pid="$(engine_pid)"; then
        log "engine already running (pid $pid) on $ENGINE_SOCKET"
        add_firewall_rules
        return 0
    fi

    unmount_leftovers
    mkdir -p "$ENGINE_DATA_ROOT" "$ENGINE_EXEC_ROOT" "$TWITTER_CI_RUN"
    rm -f "$ENGINE_SOCKET" "$ENGINE_PIDFILE"

    # dockerd sets the FORWARD policy to DROP and leaves it so; `stop` puts back
    # the policy the machine had.
    iptables -S FORWARD | sed -n 's/^-P FORWARD //p' >"$TWITTER_CI_RUN/forward-policy"

    # The rules go in before dockerd starts, because it restarts containers left
    # with a restart policy by an interrupted run as soon as it is up.
    add_firewall_rules

    log "starting dockerd on $ENGINE_SOCKET (data root $ENGINE_DATA_ROOT)"
    # No default docker0 bridge: every network the tests use is a Compose network
    # named br-*, which the firewall rules above cover.
    setsid dockerd \
        --data-root "$ENGINE_DATA_ROOT" \
        --exec-root "$ENGINE_EXEC_ROOT" \
        --pidfile "$ENGINE_PIDFILE" \
        --host "unix://$ENGINE_SOCKET" \
        --bridge none \
        --iptables=true \
        --log-level warn \
        >"$ENGINE_LOG" 2>&1 </dev/null &

    local waited=0
    until "$DOCKER" version >/dev/null 2>&1; do
        if ((waited >= START_TIMEOUT_SECONDS)); then
            tail -n 30 "$ENGINE_LOG" >&2 || true
            die "dockerd did not respond on $ENGINE_SOCKET within ${START_TIMEOUT_SECONDS}s; its log is above"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    add_firewall_rules
    log "engine ready after ${waited}s (pid $(cat "$ENGINE_PIDFILE"))"
}

# A dockerd that was killed leaves its mounts behind (the data root, network
# namespaces), which block the next start and `rm -rf` of the cache.
unmount_leftovers() {
    local target
    findmnt --raw --noheadings --output TARGET | sort --reverse | while read -r target; do
        case "$target" in
            "$ENGINE_DATA_ROOT" | "$ENGINE_DATA_ROOT"/* | "$ENGINE_EXEC_ROOT" | "$ENGINE_EXEC_ROOT"/*)
                umount --lazy "$target" || log "could not unmount $target"
                ;;
        esac
    done
}

stop_engine() {
    local pid
    if pid="$(engine_pid)"; then
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if ((waited >= STOP_TIMEOUT_SECONDS)); then
                log "dockerd still running after ${STOP_TIMEOUT_SECONDS}s; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
    else
        log "no engine of ours is running"
    fi
    unmount_leftovers
    remove_firewall_rules
    if [[ -s $TWITTER_CI_RUN/forward-policy ]]; then
        iptables -P FORWARD "$(cat "$TWITTER_CI_RUN/forward-policy")"
        rm -f "$TWITTER_CI_RUN/forward-policy"
    fi
}

case "${1:-}" in
    start) start_engine ;;
    stop) stop_engine ;;
    env)
        echo "export DOCKER_HOST=$DOCKER_HOST"
        echo "export DOCKER_CONFIG=$DOCKER_CONFIG"
        ;;
    *) die "usage: $0 start|stop|env" ;;
esac
