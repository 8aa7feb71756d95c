#!/bin/sh
# A busybox root: the static busybox, its applets as links, a passwd and group.
# Usage: tools/mkrootfs.sh DIR  (DIR is made afresh; builds into DIR.tmp, then renames)
set -eu
dir=$1
tmp="$dir.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/root" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/run" "$tmp/tmp"
chmod 1777 "$tmp/tmp"
cp /bin/busybox "$tmp/bin/busybox"
for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$tmp/etc/group"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT INT TERM
