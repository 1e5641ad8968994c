#!/bin/sh
# Entry point of every project image: read secrets from files, then run the command.
#
# For each TWITTER_<NAME>_FILE variable, the file's content becomes TWITTER_<NAME>,
# the way official images read POSTGRES_PASSWORD_FILE. Compose's development
# configuration hands the generated service token over this way. `exec` makes the
# command the container's main process, so signals and `kill -9` reach it directly.
set -eu

for file_variable in $(env | sed -n 's/^\(TWITTER_[A-Z0-9_]*_FILE\)=.*/\1/p'); do
    eval "path=\${$file_variable}"
    [ -n "$path" ] || continue
    if [ ! -r "$path" ]; then
        echo "entrypoint: $file_variable names $path, which is missing or unreadable" >&2
        exit 1
    fi
    name="${file_variable%_FILE}"
    value="$(cat "$path")"
    export "$name=$value"
    unset "$file_variable"
done

exec "$@"
