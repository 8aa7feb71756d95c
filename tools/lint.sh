#!/bin/bash
# make lint: formatting, cppcheck, and greps for what we never want in src/lib.
set -u
cd "$(dirname "$0")/.."
rc=0
files=$(ls src/lib/*.[ch] src/cli/*.[ch] tests/unit/*.c tests/fuzz/*.[ch])
if command -v clang-format >/dev/null; then
        clang-format --dry-run $files 2>&1 | grep -c warning | sed 's/^/clang-format: lines to reformat: /'
fi
if command -v cppcheck >/dev/null; then
        cppcheck -q --enable=warning,portability --inline-suppr --error-exitcode=1 \
                --suppress=memleak --suppress=unknownMacro:src/lib/net_bpf.c -D_GNU_SOURCE \
                src/lib src/cli || rc=1  # memleak: it cannot see __attribute__((cleanup)); LIBBPF_OPTS: libbpf's
fi
bad=$(grep -nE '\b(sprintf|strcpy|strcat|atoi|gets)\(' src/lib/*.c src/cli/*.c | grep -v snprintf)
[ -n "$bad" ] && { echo "never use these:"; echo "$bad"; rc=1; }
bad=$(grep -nE '(^|[^_a-z])(exit|printf|puts)\(' src/lib/*.c | grep -vE '_exit\(|snprintf|vsnprintf')
[ -n "$bad" ] && { echo "src/lib never prints or exits:"; echo "$bad"; rc=1; }
exit $rc
