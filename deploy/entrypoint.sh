#!/bin/sh
# UnionHub container entrypoint: the first argument picks the role.
#
#   web        gunicorn on $UNIONHUB_BIND (runs migrations first when MIGRATE_ON_START=1)
#   worker     RQ worker on the high, default and bulk queues (with its scheduler)
#   scheduler  RQ cron scheduler for the recurring jobs
#   migrate    apply database migrations (one-shot), then exit
#   check      readiness check: exits non-zero when the database or Redis is unreachable
#
# Any further arguments are passed on to the `unionhub` command.
set -eu

usage() {
    echo "usage: $(basename "$0") {web|worker|scheduler|migrate|check} [unionhub options...]" >&2
    exit 2
}

[ "$#" -ge 1 ] || usage
role=$1
shift

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
: "${GUNICORN_CONFIG:=$here/gunicorn.conf.py}"

case "$role" in
    web)
        if [ "${MIGRATE_ON_START:-0}" = "1" ]; then
            echo "entrypoint: MIGRATE_ON_START=1, applying migrations" >&2
            unionhub db upgrade
        fi
        # Pass host and port explicitly so the CLI's own defaults cannot
        # override UNIONHUB_BIND (the address gunicorn.conf.py also reads).
        bind=${UNIONHUB_BIND:-127.0.0.1:5000}
        exec unionhub web --host "${bind%:*}" --port "${bind##*:}" \
            --gunicorn-config "$GUNICORN_CONFIG" "$@"
        ;;
    worker)
        exec unionhub worker "$@"
        ;;
    scheduler)
        exec unionhub scheduler "$@"
        ;;
    migrate)
        exec unionhub db upgrade "$@"
        ;;
    check)
        exec unionhub check "$@"
        ;;
    *)
        echo "entrypoint: unknown role '$role'" >&2
        usage
        ;;
esac
