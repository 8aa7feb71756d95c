#!/bin/bash
# make bench: every measurement in one run, then the charts and the index.
#   bench/run.sh            the full run (about ten minutes; results committed
#                           under bench/results/)
#   bench/run.sh --quick    a few runs each, small counts (results still written)
#   bench/run.sh --smoke    one run each into a temporary directory (make check)
# Each part installs the peers it needs from Debian when they are missing.
# PARTS="start density ..." runs only those parts (default: all of them).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in "" | --quick | --smoke) ;; *) echo "usage: bench/run.sh [--quick|--smoke]" >&2; exit 2 ;; esac
parts=${PARTS:-start oci density kobjects overhead views disk limits net unify}
part() {
        local name=${1#bench/}
        case " $parts " in *" ${name%.*} "*) ;; *) return 0 ;; esac
        local t0=$SECONDS
        echo "== bench: $*" >&2
        "$@"
        echo "== bench: $1 took $((SECONDS - t0)) s" >&2
}
part bench/start.py $mode
part bench/oci.py $mode
part bench/density.py $mode
part bench/kobjects.py $mode
part bench/overhead.py $mode
part bench/views.py $mode
part bench/disk.py $mode
part bench/limits.sh $mode
part bench/net.sh $mode
part bench/unify.py $mode
[ "$mode" = --smoke ] || bench/plot.py   # the charts, from the results as they now are
