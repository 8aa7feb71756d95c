#!/bin/bash
# make check-vm: disk limits by project quota, proved on a kernel that has
# them.  This machine's kernel has neither QFMT_V2 (ext4 quotas) nor
# XFS_QUOTA; Debian's own kernel has both.  So: Debian's kernel package,
# unpacked (not installed), booted under qemu (TCG: no KVM here) with a
# small root built here from this machine's binaries (vserver, busybox,
# e2fsprogs, xfsprogs and the libraries they load), runs tools/vm-test.sh
# against an ext4 with project quotas and an xfs with pquota, and reports
# one line per check.  Exit 0 only if every check passed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${VM_DIR:-$REPO/build/vm}
TIMEOUT=${VM_TIMEOUT:-1200}
mkdir -p "$OUT"

need() { command -v "$1" >/dev/null || { echo "check-vm: no $1 ($2)" >&2; exit 1; }; }
need qemu-system-x86_64 "apt-get install qemu-system-x86"
need mkfs.xfs "apt-get install xfsprogs"
need depmod "apt-get install kmod"
need cpio "apt-get install cpio"
[ -x "$REPO/build/vserver" ] || { echo "check-vm: build first (make)" >&2; exit 1; }

# ---- the kernel: what linux-image-amd64 depends on now ----
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then # no package lists yet
        apt-get update -qq
        pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "check-vm: apt knows no linux-image-amd64 (apt-get update)" >&2; exit 1; }
kver=${pkg#linux-image-}
if [ ! -f "$OUT/kernel/boot/vmlinuz-$kver" ]; then
        rm -rf "$OUT/kernel" "$OUT"/linux-image-*.deb
        (cd "$OUT" && apt-get download "$pkg" 2>/dev/null)
        dpkg-deb -x "$OUT"/linux-image-*.deb "$OUT/kernel"
fi

# ---- the root: busybox, our binary and what it runs, the modules ----
root="$OUT/root"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,newroot,work,lib64}
copy() { # a file and the libraries it loads, at the same paths
        local f
        for f in "$@"; do
                install -D -m 0755 "$(readlink -f "$f")" "$root$f"
                ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
                        [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
                done
        done
}
cp /bin/busybox "$root/bin/busybox"
copy "$REPO/build/vserver" /sbin/mke2fs /sbin/e2fsck /sbin/resize2fs /sbin/tune2fs \
        /sbin/mkfs.xfs
mv "$root$REPO/build/vserver" "$root/sbin/vserver"
ln -s mke2fs "$root/sbin/mkfs.ext4"
arch=$(gcc -print-multiarch)
copy /usr/lib/$arch/libarchive.so.13
cp -a /etc/mke2fs.conf "$root/etc/" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
gcc -static -O2 -o "$root/bin/vs-disk" "$REPO/tests/integration/helpers/disk.c"
mods="$root/lib/modules/$kver"
mkdir -p "$mods"
# the filesystems, loop, quota formats, and the library and crypto modules they pull in
for d in fs/ext4 fs/xfs fs/jbd2 fs/mbcache.ko fs/quota drivers/block/loop.ko lib crypto \
        arch/x86/crypto; do
        src="$OUT/kernel/lib/modules/$kver/kernel/$d"
        [ -e "$src" ] && mkdir -p "$(dirname "$mods/kernel/$d")" && cp -a "$src" "$mods/kernel/$d"
done
cp "$OUT/kernel/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$mods/" 2>/dev/null || true
depmod -b "$root" "$kver"
cp "$REPO/tools/vm-test.sh" "$root/vm-test.sh"
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
# The initramfs cannot be pivot_root's old root: copy it to a tmpfs and switch there.
/bin/busybox mkdir -p /proc /newroot
/bin/busybox mount -t tmpfs -o size=75% root /newroot
/bin/busybox cp -a /bin /sbin /etc /lib /lib64 /usr /vm-test.sh /newroot/ 2>/dev/null
/bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/mnt /newroot/work /newroot/root
/bin/busybox cat > /newroot/init2 <<'EOT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
ln -s /bin/busybox /sbin/modprobe # the kernel asks for crc32c and the like by this path
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in crc32c_generic loop ext4 xfs quota_v2; do modprobe $m; done
echo "VMTEST-BOOTED $(uname -r)"
sh /vm-test.sh
echo "VMTEST-DONE"
poweroff -f
EOT
/bin/busybox chmod +x /newroot/init2
exec /bin/busybox switch_root /newroot /init2
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/initrd.gz"

# ---- boot it ----
log="$OUT/console.log"
start=$(date +%s)
timeout "$TIMEOUT" qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 2048 \
        -nographic -no-reboot -nic none -kernel "$OUT/kernel/boot/vmlinuz-$kver" \
        -initrd "$OUT/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" </dev/null >"$log" 2>&1 || true
secs=$(($(date +%s) - start))
tr -d '\r' < "$log" | grep -E '^VMTEST' > "$OUT/results.txt" || true
cat "$OUT/results.txt"
pass=$(grep -c ' PASS' "$OUT/results.txt" || true)
fail=$(grep -c ' FAIL' "$OUT/results.txt" || true)
echo "check-vm: kernel $kver under qemu (TCG), $secs s: $pass passed, $fail failed"
if ! grep -q VMTEST-DONE "$OUT/results.txt"; then
        echo "check-vm: the VM did not finish; its console is in $log" >&2
        tail -30 "$log" >&2
        exit 1
fi
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
