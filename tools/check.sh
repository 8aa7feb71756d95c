#!/bin/bash
# make check: unit tests (plain and under ASan/UBSan), the fuzz targets on
# their corpus, then the integration suite as root, then the project-quota
# checks in a VM (tools/check-vm.sh).
# Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count_cmocka() {  # a cmocka run's output on stdin
        local out p f
        out=$(cat)
        printf '%s\n' "$out" | grep -E '^\[  (PASSED|FAILED)  \]|ERROR|runtime error|Sanitizer' || true
        p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
        f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
        passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0}))
}

for san in 0 1; do
        echo "== unit tests$([ $san = 1 ] && echo ' (ASan+UBSan)')"
        if ! make -s SAN=$san all unit-bins >"$log" 2>&1; then
                cat "$log"; echo "build failed"; failed=$((failed + 1)); continue
        fi
        b=build; [ $san = 1 ] && b=build-san
        for t in "$b"/tests/test_*; do
                out=$("$t" 2>&1); rc=$?
                count_cmocka <<<"$out"
                if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^\[  FAILED  \]'; then
                        printf '%s\n' "$out" | tail -20
                        echo "$t crashed (exit $rc)"; failed=$((failed + 1))
                fi
        done
done

echo "== fuzz targets: every corpus entry once (tests/fuzz; make fuzz fuzzes)"
if make -s FUZZ=1 fuzz-bins >"$log" 2>&1; then
        FUZZ_S=0 tools/fuzz.sh 2>&1 | tee "$log"
        p=$(grep -c ': ok$' "$log")
        f=$(grep -c ': FAILED' "$log")
        passed=$((passed + p)) failed=$((failed + f))
else
        cat "$log"; echo "fuzz build failed"; failed=$((failed + 1))
fi

echo "== integration tests (real contexts, as root)"
if [ "$(id -u)" != 0 ]; then
        echo "not root: the integration tests need root"; failed=$((failed + 1))
else
        "$PYTHON" -m pytest -q -p no:cacheprovider tests/integration tests/security 2>&1 | tee "$log"
        summary=$(tail -n 1 "$log")
        p=$(printf '%s' "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
        f=$(printf '%s' "$summary" | grep -oE '[0-9]+ (failed|error|errors)' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
        s=$(printf '%s' "$summary" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+')
        [ -n "$s" ] && echo "$s skipped (slow tests; VSERVER_TEST_DEBIAN=1 runs the Debian boot)"
        [ -z "$p$f" ] && f=1
        passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0}))
fi

echo "== disk limits by project quota, in a VM (Debian's own kernel under qemu)"
if [ "$(id -u)" = 0 ]; then
        tools/check-vm.sh 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        p=$(grep -c '^VMTEST .* PASS' "$log")
        f=$(grep -c '^VMTEST .* FAIL' "$log")
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
        passed=$((passed + p)) failed=$((failed + f))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
