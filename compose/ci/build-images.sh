#!/usr/bin/env bash
# Build every image the Compose files use, without an image registry, as root,
# against the private engine that engine.sh started.
#
# Real users pull the official python, postgres and nginx images; this machine
# cannot, so it builds stand-ins from Debian packages:
#   twitter-system-base:bookworm      debootstrap minbase + python3, python3-venv,
#                                     ca-certificates, imported with `docker import`
#   twitter-system-postgres:15        Debian's postgresql-15 + compose/postgres/docker-entrypoint.sh
#   twitter-system-nginx:bookworm     Debian's nginx
# and then the project's images from compose/Dockerfile with BASE_IMAGE set to the
# base above and Python packages installed from a wheelhouse built on the host
# (pip cannot reach the package index from inside a build here).
#
# The debootstrap tarball is cached under $TWITTER_CI_CACHE, keyed by the recipe's
# hash; the engine's layer cache does the rest. From an empty cache everything is
# built from nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_PACKAGES=python3,python3-venv,ca-certificates
BASE_IMAGE=twitter-system-base:$DEBIAN_SUITE
POSTGRES_IMAGE=twitter-system-postgres:15
NGINX_IMAGE=twitter-system-nginx:$DEBIAN_SUITE
WHEELHOUSE="$REPO/compose/wheels"

image_label() {
    "$DOCKER" image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

build_base_image() {
    # Anything that changes the root filesystem belongs in this key.
    local recipe_key
    recipe_key="$(printf '%s\n' "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$BASE_PACKAGES" "minbase" "$(declare -f write_base_sources)" |
        sha256sum | cut -c1-16)"
    if [[ $(image_label "$BASE_IMAGE" org.twitter-system.recipe) == "$recipe_key" ]]; then
        log "base image $BASE_IMAGE is up to date (recipe $recipe_key)"
        return
    fi

    local tarball="$TWITTER_CI_CACHE/debootstrap/$DEBIAN_SUITE-$recipe_key.tar"
    if [[ ! -s $tarball ]]; then
        log "debootstrap $DEBIAN_SUITE (minbase: $BASE_PACKAGES); takes a few minutes"
        local root
        root="$(mktemp -d "$TWITTER_CI_CACHE/rootfs.XXXXXX")"
        debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" \
            >"$TWITTER_CI_RUN/debootstrap.log" 2>&1 ||
            { tail -n 30 "$TWITTER_CI_RUN/debootstrap.log" >&2; die "debootstrap failed; its log is above"; }
        write_base_sources "$root"
        chroot "$root" apt-get clean
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/* "$root"/dev/*
        mkdir -p "$(dirname "$tarball")"
        tar --numeric-owner -C "$root" -cf "$tarball.partial" .
        mv "$tarball.partial" "$tarball"
        rm -rf "$root"
    fi

    log "importing $tarball as $BASE_IMAGE"
    "$DOCKER" import \
        --change "LABEL org.twitter-system.recipe=$recipe_key" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null
}

# debootstrap writes the release suite alone; security and point-release updates
# come from these too, as in Debian's own container images.
write_base_sources() {
    local root="$1"
    cat >"$root/etc/apt/sources.list" <<SOURCES
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security $DEBIAN_SUITE-security main
SOURCES
}

# Docker's legacy builder: the engine is Debian's 20.10 and no buildx plugin is
# installed. `--network host` lets apt-get inside a build reach Debian's mirror.
docker_build() {
    local build_log="$TWITTER_CI_RUN/docker-build.log"
    if ! DOCKER_BUILDKIT=0 "$DOCKER" build --network host "$@" >"$build_log" 2>&1; then
        tail -n 40 "$build_log" >&2
        die "docker build $* failed; the end of its output is above"
    fi
}

build_database_and_proxy_images() {
    log "building $POSTGRES_IMAGE from Debian's postgresql-15"
    docker_build --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$POSTGRES_IMAGE" "$REPO/compose/postgres"
    log "building $NGINX_IMAGE from Debian's nginx"
    docker_build --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$NGINX_IMAGE" "$REPO/compose/nginx"
}

# pip wheel of every pinned dependency (and of the build backend the project
# needs), on the host, which can reach the index. The wheels must fit the image's
# Python, so the host's python3 must be the same minor version as the base image's.
fill_wheelhouse() {
    local image_python host_python
    image_python="$("$DOCKER" run --rm --network none "$BASE_IMAGE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    host_python="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [[ $image_python == "$host_python" ]] ||
        die "host python3 is $host_python but $BASE_IMAGE has $image_python: wheels built here would not fit"

    log "filling the wheelhouse $WHEELHOUSE"
    local requirements
    requirements="$(mktemp)"
    python3 -c "import sys, tomllib; print('\n'.join(tomllib.load(open(sys.argv[1], 'rb'))['project']['dependencies']))" \
        "$REPO/pyproject.toml" >"$requirements"
    build_requirements="$(python3 -c "import sys, tomllib; print(' '.join(tomllib.load(open(sys.argv[1], 'rb'))['build-system']['requires']))" "$REPO/pyproject.toml")"
    # shellcheck disable=SC2086 # one word per build requirement
    python3 -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$WHEELHOUSE" \
        -r "$requirements" $build_requirements 2>&1 |
        { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
    rm -f "$requirements"
}

build_project_images() {
    local tag="${TWITTER_IMAGE_TAG:-latest}" target
    for target in account post timeline gateway tools; do
        log "building twitter-system/$target:$tag"
        docker_build -f "$REPO/compose/Dockerfile" --target "$target" \
            --build-arg BASE_IMAGE="$BASE_IMAGE" \
            --build-arg PIP_OPTIONS="--no-index --find-links /tmp/wheels" \
            -t "twitter-system/$target:$tag" "$REPO"
    done
}

# The variables that point the Compose files at the images built here.
print_compose_variables() {
    echo "TWITTER_BASE_IMAGE=$BASE_IMAGE"
    echo "TWITTER_POSTGRES_IMAGE=$POSTGRES_IMAGE"
    echo "TWITTER_NGINX_IMAGE=$NGINX_IMAGE"
}

case "${1:-all}" in
    base) build_base_image ;;
    all)
        build_base_image
        build_database_and_proxy_images
        fill_wheelhouse
        build_project_images
        # Rebuilds leave the previous images untagged; on a kept engine they would pile up.
        "$DOCKER" image prune --force >/dev/null
        ;;
    variables) print_compose_variables ;;
    *) die "usage: $0 [all|base|variables]" ;;
esac
