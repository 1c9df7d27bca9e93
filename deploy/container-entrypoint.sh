#!/bin/sh
# The container's entry point (deploy/Containerfile): initialise the data directory on the
# first start, then serve in the foreground as PID 1 (exec, so SIGTERM from `podman stop` or
# `docker stop` reaches the server's supervisor, which stops its workers gracefully).
#
#   (no arguments, or options)  strongroom serve --data-dir DIR --host 0.0.0.0 [options]
#   a command                   run it instead, e.g. `strongroom audit verify --data-dir ...`
#
# Environment:
#   STRONGROOM_DATA_DIR      the data directory (default /var/lib/strongroom, the volume)
#   STRONGROOM_HOST          the address to listen on (default 0.0.0.0: a container's clients
#                            come from outside its network namespace); overrides [listener] host
#   STRONGROOM_SERVER_NAMES  host names and addresses, space-separated, that the server
#                            certificate made by the first start names besides localhost
#                            (the names clients connect to)
set -eu

data_dir=${STRONGROOM_DATA_DIR:-/var/lib/strongroom}

case "${1:-}" in
    "" | -*) ;;          # options for serve
    *) exec "$@" ;;      # a command of its own
esac

# An empty directory is initialised; one holding a strongroom.toml is served as it is (init
# never replaces anything, but a CA, token and master key made by accident in the wrong
# volume are worse than a refusal). Anything else (another volume, a half-restored
# directory) is refused rather than mixed with a new data directory. A file system's
# lost+found does not count.
is_empty() {
    for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        [ "$entry" = "$1/lost+found" ] && continue
        return 1
    done
    return 0
}

initialise() {
    set --
    for name in ${STRONGROOM_SERVER_NAMES:-}; do
        set -- "$@" --server-name "$name"
    done
    strongroom init --data-dir "$data_dir" "$@"
}

if [ ! -e "$data_dir/strongroom.toml" ]; then
    if ! is_empty "$data_dir"; then
        echo "strongroom: $data_dir is not empty but has no strongroom.toml: not a data directory;" \
            "not initialising it (mount an empty volume, or one made by strongroom init or restore)" >&2
        exit 1
    fi
    initialise
fi

exec strongroom serve --data-dir "$data_dir" --host "${STRONGROOM_HOST:-0.0.0.0}" "$@"
