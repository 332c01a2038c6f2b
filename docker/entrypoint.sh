#!/bin/sh
# Container entrypoint of the loyalty gateway.
#   serve    (default) the API, the 1C and Bitrix endpoints, the operator page; GATEWAY_PROCESSES
#            server processes on GATEWAY_PORT (the workers too unless GATEWAY_WORKERS=false)
#   worker   the background workers only (hold sweeper, expiry, outbox relay, jobs)
#   migrate  apply the database migrations and exit (run once per deploy, before the others)
#   anything else is a `gateway` command (`check-config /etc/gateway/gateway.yaml`, `tx stuck`…)
set -eu

command="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$command" in
    serve)
        exec gateway serve --host "${GATEWAY_HOST:-0.0.0.0}" --port "${GATEWAY_PORT:-8080}" \
            --processes "${GATEWAY_PROCESSES:-1}" "$@"
        ;;
    worker)
        exec gateway worker "$@"
        ;;
    migrate)
        exec gateway db upgrade "$@"
        ;;
    *)
        exec gateway "$command" "$@"
        ;;
esac
