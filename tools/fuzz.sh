#!/bin/bash
# make fuzz: every libFuzzer target (build-fuzz/fuzz/*) for FUZZ_S seconds
# (default 60) from its corpus, tests/fuzz/corpus/TARGET; what it finds that
# covers something new is merged into the corpus (-merge=1 keeps it small).
# FUZZ_S=0: each corpus entry once, nothing merged (what make check runs: a
# committed regression input that crashes fails the build).
#   FUZZ_TARGETS="fuzz_set fuzz_proc"   only those
#   FUZZ_JOBS=2                         targets side by side (default: the CPUs)
#   FUZZ_TIMEOUT=300                    seconds one input may take (default 20; more
#                                       for runs at idle priority beside other work)
# One line per target: its runs, seconds and result; crashes are kept in
# build-fuzz/crashes/TARGET-* with the libFuzzer output beside them.
set -u
cd "$(dirname "$0")/.."
B=${B:-build-fuzz}
S=${FUZZ_S:-60}
JOBS=${FUZZ_JOBS:-$(nproc)}
TIMEOUT=${FUZZ_TIMEOUT:-20}
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}
mkdir -p "$B/crashes" "$B/logs"
# leaks inside libraries we do not own (tests/fuzz/lsan.supp says which and why)
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

one() {
        local t=$1 corpus=tests/fuzz/corpus/$1 log=$B/logs/$1.log new
        mkdir -p "$corpus"
        if [ "$S" = 0 ]; then
                "$B/fuzz/$t" -runs=0 -timeout=20 -rss_limit_mb=2048 "$corpus" >"$log" 2>&1
        else
                new=$(mktemp -d)
                # the CPU time it had (a run at idle priority gets less than its wall time)
                local timer=()
                [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%U %S" -o "$log.cpu")
                "${timer[@]}" "$B/fuzz/$t" -max_total_time="$S" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
                        -artifact_prefix="$B/crashes/$t-" -print_final_stats=1 \
                        "$new" "$corpus" >"$log" 2>&1
                local rc=$?
                "$B/fuzz/$t" -merge=1 "$corpus" "$new" >>"$log.merge" 2>&1
                rm -rf "$new"
                (exit $rc)
        fi
        local rc=$? runs secs cpu=""
        [ "$S" != 0 ] && [ -s "$log.cpu" ] &&
                cpu=" ($(awk 'END { printf "%d", $1 + $2 }' "$log.cpu") s of CPU)"
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+|Done [0-9]+ runs' "$log" |
                grep -oE '[0-9]+' | tail -1)
        secs=$(grep -oE 'in [0-9]+ second' "$log" | grep -oE '[0-9]+' | tail -1)
        if [ $rc -eq 0 ]; then
                echo "$t: ${runs:-?} runs in ${secs:-$S} s$cpu, $(ls "$corpus" | wc -l) corpus entries: ok"
        else
                echo "$t: FAILED (exit $rc): $(grep -m1 -E 'ERROR|runtime error|abort' "$log")"
                tail -40 "$log" >&2
                return 1
        fi
}

fail=0
running=0
for t in $targets; do
        one "$t" &
        running=$((running + 1))
        if [ $running -ge "$JOBS" ]; then
                wait -n || fail=1
                running=$((running - 1))
        fi
done
while [ $running -gt 0 ]; do
        wait -n || fail=1
        running=$((running - 1))
done
exit $fail
