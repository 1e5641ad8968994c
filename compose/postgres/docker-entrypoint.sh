#!/bin/bash
# Entry point of the Debian-built PostgreSQL image: create the cluster on first
# start, then run the server as the postgres user.
#
# It reads the variables the official postgres image documents:
#   POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE   superuser password (required unless
#                                                 POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER (postgres)  POSTGRES_DB (= POSTGRES_USER)  POSTGRES_INITDB_ARGS
#   POSTGRES_HOST_AUTH_METHOD (scram-sha-256)  PGDATA (/var/lib/postgresql/data)
# and on first start runs /docker-entrypoint-initdb.d/*.sh, *.sql and *.sql.gz in
# name order. A container started with other arguments than `postgres ...` just
# runs them.
set -Eeuo pipefail

log() {
    echo "docker-entrypoint: $*" >&2
}

fail() {
    log "error: $*"
    exit 1
}

read_password() {
    if [[ -n ${POSTGRES_PASSWORD_FILE:-} ]]; then
        [[ -z ${POSTGRES_PASSWORD:-} ]] || fail "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
        POSTGRES_PASSWORD="$(<"$POSTGRES_PASSWORD_FILE")"
    fi
    export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"
}

prepare_folders_as_root() {
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    chmod 2775 /var/run/postgresql
}

run_init_scripts() {
    local script
    shopt -s nullglob
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh) log "running $script"; bash "$script" ;;
            *.sql) log "running $script"; psql_local -f "$script" ;;
            *.sql.gz) log "running $script"; gunzip -c "$script" | psql_local ;;
            *) log "ignoring $script: not .sh, .sql or .sql.gz" ;;
        esac
    done
    shopt -u nullglob
}

psql_local() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

create_cluster() {
    local auth_method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [[ -z $POSTGRES_PASSWORD && $auth_method != trust ]]; then
        fail "the database is uninitialized and POSTGRES_PASSWORD is empty: set it, or set POSTGRES_HOST_AUTH_METHOD=trust for development"
    fi

    log "creating a cluster in $PGDATA for superuser $POSTGRES_USER"
    local password_file
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, split on purpose
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$password_file" \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$auth_method" \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$password_file"
    printf '\n# Added by docker-entrypoint.sh: any address, %s.\nhost all all all %s\n' \
        "$auth_method" "$auth_method" >>"$PGDATA/pg_hba.conf"

    # A server on the Unix socket only, so no client sees a half-initialised database.
    pg_ctl --pgdata="$PGDATA" --wait --silent --options="-c listen_addresses=''" start
    if [[ $POSTGRES_DB != postgres ]]; then
        # psql quotes the name as an identifier only in a script, not in --command.
        echo 'CREATE DATABASE :"db"' |
            psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
                --set db="$POSTGRES_DB" >/dev/null
    fi
    run_init_scripts
    pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
    log "cluster ready"
}

main() {
    if [[ ${1:-} == -* ]]; then
        set -- postgres "$@"
    fi
    [[ ${1:-} == postgres ]] || exec "$@"

    export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
    if [[ $(id -u) == 0 ]]; then
        prepare_folders_as_root
        exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
    fi

    read_password
    export POSTGRES_USER="${POSTGRES_USER:-postgres}"
    export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    if [[ ! -s $PGDATA/PG_VERSION ]]; then
        create_cluster
    fi
    unset POSTGRES_PASSWORD
    exec "$@" -c listen_addresses='*'
}

main "$@"
