#!/bin/sh
# Runs inside the VM of tools/check-vm.sh (busybox sh, Debian's kernel):
# disk limits by project quota on ext4 (project,quota + prjquota) and xfs
# xfs says ENOSPC where ext4 says EDQUOT for a project over its quota: either passes.
# (pquota), one "VMTEST FS CHECK PASS|FAIL detail" line per check.
export PATH=/sbin:/bin VSERVER_CGROUP_PARENT=/vs-vm

FS=
check() { # NAME CONDITION-EXIT-CODE DETAIL
        if [ "$2" -eq 0 ]; then echo "VMTEST $FS $1 PASS $3"; else echo "VMTEST $FS $1 FAIL $3"; fi
}
field() { # KEY: from vserver stats NAME --json
        vserver stats "$1" --json | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
dfk() { # the size, used and available KiB of / in guest $1
        vserver exec "$1" -- df -Pk / | tail -1 | awk '{print $2, $3, $4}'
}
build() { # NAME OPTIONS...
        n=$1
        shift
        vserver build "$n" --init none --net none --set guest.views=no "$@" >/dev/null &&
                cp /bin/vs-disk "$VSERVER_ROOT/var/lib/vserver/guests/$n/rootfs/bin/vs-disk"
}
between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

run_fs() {
        FS=$1
        mnt=/mnt/$FS
        export VSERVER_ROOT=$mnt/vs
        mkdir -p "$VSERVER_ROOT"
        G=$VSERVER_ROOT/var/lib/vserver/guests

        out=$(vserver host check)
        echo "$out" | grep -q "^disk limits for new guests  *yes  project"
        check host-check $? "$(echo "$out" | grep 'new guests')"

        out=$({ build p1 --disk 64M && vserver start p1; } 2>&1)
        check build-start $? "p1 with disk = 64M $(echo $out | tr "\n" " ")"
        set -- $(dfk p1)
        between "$1" 63000 66000
        check df-shows-limit $? "df / inside: size $1 KiB"

        out=$(vserver exec p1 -- /bin/vs-disk fill /big 100)
        wrote=$(echo "$out" | awk '{print $2}')
        echo "$out" | grep -Eq "Disk quota exceeded|No space left on device" && between "$wrote" 60 64
        check write-stops-at-limit $? "$out"

        dd if=/dev/zero of=$mnt/host-file bs=1M count=100 2>/dev/null
        check host-keeps-writing $? "100 MiB beside the guests"
        rm -f $mnt/host-file
        build p2 --disk 64M && vserver start p2 &&
                vserver exec p2 -- /bin/vs-disk fill /f 20 | grep -q "wrote 20 MiB: ok"
        check other-guest-keeps-writing $? "p2 wrote 20 MiB"

        used=$(field p1 disk_bytes)
        vserver stats p1 --json | grep -q '"disk_mechanism":"project"' && between "$used" 55000000 68000000
        check stats-show-usage $? "disk_bytes $used"

        vserver set p1 limits.disk=128M >/dev/null
        out=$(vserver exec p1 -- /bin/vs-disk fill /more 40)
        set -- $(dfk p1)
        echo "$out" | grep -q "wrote 40 MiB: ok" && between "$1" 126000 132000
        check raise-live $? "$out; df size $1 KiB"

        err=$(vserver set p1 limits.disk.reserved=5% 2>&1 >/dev/null)
        r=$?
        [ $r -ne 0 ] && echo "$err" | grep -q "keep no reserve"
        check no-reserve-on-project $? "$err"

        err=$(vserver set p1 limits.disk=32M 2>&1 >/dev/null)
        out=$(vserver exec p1 -- /bin/vs-disk fill /one 1)
        echo "$err" | grep -q "over the new limit" && echo "$out" | grep -Eq "Disk quota exceeded|No space left on device"
        check below-usage-set-anyway $? "$err / $out"
        vserver set p1 limits.disk=128M >/dev/null

        build p3 --disk 64M --disk-inodes 1000 && vserver start p3
        out=$(vserver exec p3 -- /bin/vs-disk files /root 2000)
        made=$(echo "$out" | awk '{print $2}' | tr -d :)
        files=$(field p3 disk_inodes)
        echo "$out" | grep -Eq "Disk quota exceeded|No space left on device" && between "$files" 990 1000
        check inode-limit $? "$out; files now $files"

        # the escapes: a guest without a user namespace (seccomp), and one with (the kernel)
        build p4 --disk 64M --set security.userns=no && vserver start p4
        for g in p4 p1; do
                vserver exec $g -- sh -c ': > /f; mkdir /d' 
                a=$(vserver exec $g -- /bin/vs-disk projid /f 0)
                b=$(vserver exec $g -- /bin/vs-disk noinherit /d 2>&1)
                c=$(vserver exec $g -- /bin/vs-disk setattr /f 0)
                d=$(vserver exec $g -- mount -o remount,noprjquota / 2>&1)
                r=$?
                # each refused by the kernel or our filter, not a guest that is not there
                refused() { [ -n "$1" ] && [ "$1" != ok ] && ! echo "$1" | grep -q "vserver:"; }
                refused "$a" && refused "$c" && echo "$b" | grep -q "^fssetxattr [A-Z]" &&
                        [ $r -ne 0 ] && ! echo "$d" | grep -q "vserver:"
                check escape-refused-$g $? "projid: $a; inherit: $b; setattr: $c; remount: $d"
        done
        proj=$(vserver exec p4 -- /bin/vs-disk fill /x 70 | grep -Ec "Disk quota exceeded|No space left on device")
        [ "$proj" -eq 1 ]
        check limit-holds-after-escapes $? "p4 still stopped at its limit"
        ln "$G/p1/rootfs/big" "$G/p2/rootfs/linked" 2>/dev/null
        [ $? -ne 0 ]
        check no-hard-link-across-projects $? "ln from p1's tree into p2's refused"

        # files copied in at build from a tarball and from a clone: charged to the new guest
        mkdir -p /work/tree && cp -a "$G/p2/rootfs/." /work/tree/ && rm -f /work/tree/f &&
                dd if=/dev/urandom of=/work/tree/payload bs=1M count=20 2>/dev/null &&
                tar -C /work/tree -cf /work/tree.tar . && rm -rf /work/tree
        build t1 --template /work/tree.tar --disk 64M &&
                build c1 --template clone:t1 --disk 64M
        vserver start t1 && vserver start c1
        t=$(field t1 disk_bytes)
        c=$(field c1 disk_bytes)
        between "$t" 20000000 40000000 && between "$c" 20000000 40000000
        check build-tarball-clone-charged $? "t1 $t bytes, c1 $c bytes"

        # moved by the host from one guest to another: charged to the new one
        before=$(field c1 disk_bytes)
        mv "$G/t1/rootfs/payload" "$G/c1/rootfs/moved" && sync
        after=$(field c1 disk_bytes)
        t=$(field t1 disk_bytes)
        [ "$after" -gt $((before + 20000000)) ] && [ "$t" -lt 20000000 ]
        check moved-between-guests $? "c1 $before -> $after, t1 now $t"

        # unify: files of another project are left alone, no error
        out=$(vserver unify t1 c1 2>&1)
        r=$?
        i1=$(ls -i "$G/t1/rootfs/bin/busybox" | awk '{print $1}')
        i2=$(ls -i "$G/c1/rootfs/bin/busybox" | awk '{print $1}')
        [ $r -eq 0 ] && [ "$i1" != "$i2" ]
        check unify-keeps-projects-apart $? "$out"

        # a guest built without a limit gets one later: its tree tagged in place, running
        build q1 && vserver start q1 && vserver exec q1 -- /bin/vs-disk fill /data 10 >/dev/null &&
                vserver set q1 --save limits.disk=64M >/dev/null
        u=$(field q1 disk_bytes)
        set -- $(dfk q1)
        out=$(vserver exec q1 -- /bin/vs-disk fill /more 100)
        between "$u" 10000000 20000000 && between "$1" 63000 66000 &&
                echo "$out" | grep -Eq "Disk quota exceeded|No space left on device"
        check limit-added-later $? "usage $u bytes, df size $1 KiB; $out"

        # delete clears the project: the next guest with its id starts at zero
        ctx=$(sed -n 's/^context = //p' "$VSERVER_ROOT/etc/vserver/guests/p1.conf")
        vserver delete --force p1 && build p5 --disk 64M --context "$ctx" && vserver start p5
        u=$(field p5 disk_bytes)
        between "$u" 1 10000000
        check delete-clears-project $? "context $ctx: the new guest uses $u bytes"

        # another installation on the same filesystem, whose context ids are kept apart
        # from ours only while both run: its guests neither clear nor share our project
        vserver stop p5 >/dev/null 2>&1
        out=$(VSERVER_ROOT=$mnt/vs2 vserver build n1 --init none --net none --context "$ctx" 2>&1 &&
                VSERVER_ROOT=$mnt/vs2 vserver delete --force n1 2>&1)
        vserver start p5 >/dev/null 2>&1
        u2=$(field p5 disk_bytes)
        set -- $(dfk p5)
        [ "$u2" -ge "$u" ] && between "$1" 63000 66000
        check other-installation-delete-keeps-project $? "p5 uses $u2 bytes (was $u), df size $1 KiB; $out"
        vserver stop p5 >/dev/null 2>&1
        out=$(VSERVER_ROOT=$mnt/vs2 vserver build n2 --init none --net none --context "$ctx" \
                --disk 32M 2>&1)
        rc=$?
        vserver start p5 >/dev/null 2>&1
        set -- $(dfk p5)
        [ "$rc" -eq 1 ] && echo "$out" | grep -q "project quota $ctx on the filesystem of .* is in use" &&
                between "$1" 63000 66000
        check other-installation-build-refused $? "rc $rc: $out; p5 df size $1 KiB"
        VSERVER_ROOT=$mnt/vs2 vserver delete --force n2 >/dev/null 2>&1

        for g in $(ls "$VSERVER_ROOT/etc/vserver/guests" | sed 's/\.conf$//'); do
                vserver delete --force "$g" >/dev/null 2>&1
        done
}

mkdir -p /mnt/ext4 /mnt/xfs
truncate -s 1G /work/ext4.img /work/xfs.img
out=$( (mkfs.ext4 -q -O quota,project -E quotatype=prjquota /work/ext4.img &&
        mount -o loop,prjquota /work/ext4.img /mnt/ext4) 2>&1)
FS=ext4 check mount $? "ext4 with project,quota mounted prjquota $out"
out=$( (mkfs.xfs -q /work/xfs.img && mount -o loop,pquota /work/xfs.img /mnt/xfs) 2>&1)
FS=xfs check mount $? "xfs mounted pquota $out"
run_fs ext4
run_fs xfs

# vserver-runc on this kernel (and on cgroup2 alone: the device filter is a BPF program)
FS=oci
export VSERVER_ROOT=/mnt/ext4/vs
ln -sf vserver /sbin/vserver-runc
vserver build o1 --init none --net none >/dev/null 2>&1
b=/work/bundle
mkdir -p $b && (cd $b && vserver-runc spec)
sed -i -e 's/"terminal": true/"terminal": false/' \
        -e "s|\"path\": \"rootfs\"|\"path\": \"$VSERVER_ROOT/var/lib/vserver/guests/o1/rootfs\"|" \
        -e 's|"mounts": \[|&{"destination": "/lc", "type": "bind", "source": "/dev/loop-control", "options": ["bind"]},|' \
        -e 's/^\( *\)"sh"$/\1"sh", "-c", "echo oci-ok; cat \/lc 2>\&1; exit 3"/' \
        $b/config.json
out=$(vserver-runc run --bundle $b c1 </dev/null 2>&1)
rc=$?
[ $rc -eq 3 ] && echo "$out" | grep -q oci-ok
check run-exit-code $? "rc $rc: $(echo $out | tr "\n" " ")"
# the spec denies every device but the basic ones: the host's loop-control, bound in, stays shut
echo "$out" | grep -q "cat: can't open '/lc': Operation not permitted"
check device-filter $? "$(echo $out | tr "\n" " ")"
vserver-runc list -q | grep -q c1
check removed-after-run $((1 - $?)) "$(vserver-runc list -q)"
vserver delete --force o1 >/dev/null 2>&1

# cgroup2 alone: a guest delegated gets the leaf NAME/guest with the controllers (a second
# memory cgroup); one with delegate = no lives in NAME itself, its limits there, none below
FS=cgroup2
cg=/sys/fs/cgroup/vs-vm
out=$({ build d1 --memory 64M && build d0 --memory 64M --delegate no &&
        vserver start d1 && vserver start d0; } 2>&1)
check start-both $? "$(echo $out | tr "\n" " ")"
procs() { cat "$1/cgroup.procs" 2>/dev/null; } # (kernfs files have no size for test -s)
[ -e $cg/d1/guest/memory.max ] && [ -n "$(procs $cg/d1/guest)" ] && [ -z "$(procs $cg/d1)" ]
check delegated-leaf-has-controllers $? "$(ls $cg/d1/guest | grep -c '^memory\.') memory files in d1/guest"
[ ! -e $cg/d0/guest ] && [ -z "$(cat $cg/d0/cgroup.subtree_control)" ] &&
        [ "$(cat $cg/d0/memory.max)" = 67108864 ] && [ -n "$(procs $cg/d0)" ] &&
        [ "$(cat $cg/d0/cgroup.max.depth)" = 0 ]
check not-delegated-one-cgroup $? "d0: $(ls -d $cg/d0/*/ 2>/dev/null | wc -l) below, subtree_control '$(cat $cg/d0/cgroup.subtree_control)', memory.max $(cat $cg/d0/memory.max)"
out=$(vserver exec d0 -- sh -c 'cat /proc/self/cgroup; mkdir /sys/fs/cgroup/x' 2>&1)
echo "$out" | grep -q '^0::/$' && echo "$out" | grep -q 'Read-only file system'
check not-delegated-read-only $? "$(echo $out | tr "\n" " ")"
out=$( (vserver exec d0 -- sh -c 'cat /sys/fs/cgroup/memory.max'; vserver stop d0 --timeout 0 &&
        vserver stop d1 --timeout 0) 2>&1)
[ ! -e $cg/d0 ] && [ ! -e $cg/d1 ] && echo "$out" | grep -q '^67108864$'
check not-delegated-limit-and-stop $? "$(echo $out | tr "\n" " ")"
vserver delete --force d0 >/dev/null 2>&1
vserver delete --force d1 >/dev/null 2>&1
