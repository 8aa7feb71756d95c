/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "util.h"

/*
 * The filter is compiled to classic BPF once, in the parent; the child only
 * hands the program to the kernel (no libseccomp work, no allocation there).
 */
struct VsSeccomp {
        struct sock_filter *insns;
        unsigned short len;
};

/*
 * Compiling the default filter with libseccomp costs about a millisecond, a
 * fifth of a whole start.  The build runs tools/gen-seccomp.c to compile it
 * once into build/seccomp-prebuilt.c, linked into the vserver binary; where
 * it is not linked (the generator, the unit tests) these are NULL and the
 * filter is compiled at run time, the same way.
 */
extern const struct sock_filter vs_seccomp_prebuilt[3][BPF_MAXINSNS] __attribute__((weak));
extern const unsigned short vs_seccomp_prebuilt_len[3] __attribute__((weak));

/*
 * What no guest needs and what would reach past its context: kernel code and
 * images, the clock, swap and accounting, tracing and BPF, the kernel keyring
 * (not namespaced), handle-based opens (with DAC_READ_SEARCH,
 * open_by_handle_at is the "shocker" escape), userfaultfd (a race-widening
 * tool for kernel exploits), new mounts, io_uring (a large attack surface
 * that also bypasses this filter's view of syscalls).  Most already fail for
 * want of a capability; the filter is the second wall.  User namespaces are
 * handled apart (see add_userns_rules).
 */
static const char *const default_deny[] = {
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "nfsservctl",
    "iopl",
    "ioperm",
    "syslog",
    "vm86",
    "vm86old",
    "uselib",
    "_sysctl",
    "sysfs",
    "ustat",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kcmp",
    "fanotify_init",
    "vhangup",
    "lsm_set_self_attr",
    NULL,
};

/*
 * What a user namespace of the guest's own confines: mounts act on its own
 * mount namespace (the kernel checks CAP_SYS_ADMIN there, and refuses what
 * would reveal more than the guest sees), reboot ends its own pid namespace.
 * name_to_handle_at only names a file (systemd reads cgroup ids with it);
 * open_by_handle_at, which opens one past every path check, stays denied.
 */
static const char *const userns_allowed[] = {
    "mount",  "umount",     "umount2",   "pivot_root",    "fsopen", "fsconfig",          "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr", "reboot", "name_to_handle_at", NULL,
};

static bool in_list(const char *const *list, const char *name)
{
        for (; *list; list++)
                if (streq(*list, name))
                        return true;
        return false;
}

const char *const *vs_seccomp_userns_allowed(void)
{
        return userns_allowed;
}

const char *const *vs_seccomp_default_list(void)
{
        return default_deny;
}

static int deny(scmp_filter_ctx ctx, const char *name, VsError *err)
{
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return vs_error_input(err, "unknown syscall \"%s\"", name);
        /* Names of other architectures resolve to negative pseudo numbers: skip. */
        if (nr < 0)
                return 0;
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (r < 0 && r != -EEXIST)
                return vs_error(err, r, "seccomp rule for %s", name);
        return 0;
}

static int add_default(scmp_filter_ctx ctx, bool userns, VsError *err)
{
        for (const char *const *p = default_deny; *p; p++) {
                if (userns && in_list(userns_allowed, *p))
                        continue;
                /* a name this libseccomp does not know is not a user error here */
                if (seccomp_syscall_resolve_name(*p) == __NR_SCMP_ERROR)
                        continue;
                int r = deny(ctx, *p, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ioctl @cmds refused with EPERM; the command is an unsigned int: its low 32 bits, as the kernel.
 */
static int deny_ioctls(scmp_filter_ctx ctx, const unsigned long *cmds, size_t n, VsError *err)
{
        for (size_t i = 0; i < n; i++) {
                int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, cmds[i]));
                if (r < 0)
                        return vs_error(err, r, "seccomp ioctl rules");
        }
        return 0;
}

/*
 * TIOCSTI pushes bytes into a terminal's input: a guest handed the caller's
 * terminal could type commands into the host shell once it exits.
 */
static int add_tty_rules(scmp_filter_ctx ctx, VsError *err)
{
        static const unsigned long cmds[] = {TIOCSTI, TIOCLINUX};
        return deny_ioctls(ctx, cmds, ARRAY_SIZE(cmds), err);
}

/*
 * Project ids and project inheritance decide which disk quota a file is
 * charged to (disk.h).  Where a guest shares the host's user namespace,
 * the kernel lets a file's owner change both (FS_IOC_FSSETXATTR, the
 * FS_PROJINHERIT_FL bit of FS_IOC_SETFLAGS, file_setattr), and its files
 * would leave its limit: denied there, with chattr and xfs_io's flags.  In
 * a guest's own user namespace the kernel refuses the change itself.
 */
static int add_fsattr_rules(scmp_filter_ctx ctx, VsError *err)
{
        static const unsigned long cmds[] = {FS_IOC_FSSETXATTR, FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS};
        return deny_ioctls(ctx, cmds, ARRAY_SIZE(cmds), err);
}

/*
 * System calls newer than the libseccomp we build with (2.5 stops at 456):
 * it cannot name them, and refuses their numbers, so the rules for them are
 * a few instructions of our own in front of its program.  Since Linux 5.x new
 * calls have one number on x86_64 and i386; x32 sets its bit.  Elsewhere the
 * table is empty, and a rule naming one is refused (fail closed).
 */
#define X32_SYSCALL_BIT 0x40000000U
static const struct {
        const char *name;
        int nr;
} newer[] = {
#if defined(__x86_64__)
    {"statmount", 457},
    {"listmount", 458},
    {"lsm_get_self_attr", 459},
    {"lsm_set_self_attr", 460},
    {"lsm_list_modules", 461},
    {"mseal", 462},
    {"setxattrat", 463},
    {"getxattrat", 464},
    {"listxattrat", 465},
    {"removexattrat", 466},
    {"open_tree_attr", 467},
    {"file_getattr", 468},
    {"file_setattr", 469},
#endif
    {NULL, 0},
};

int vs_seccomp_newer_nr(const char *name)
{
        for (size_t i = 0; newer[i].name; i++)
                if (streq(newer[i].name, name))
                        return newer[i].nr;
        return -1;
}

/* @head's @len instructions in front of @f's program (@head jumps on into it). */
static int put_in_front(VsSeccomp *f, const struct sock_filter *head, size_t len, VsError *err)
{
        if (f->len + len > BPF_MAXINSNS)
                return vs_error(err, E2BIG, "seccomp filter too long");
        struct sock_filter *m = malloc((f->len + len) * sizeof *m);
        if (!m)
                return vs_error(err, ENOMEM, "seccomp");
        memcpy(m, head, len * sizeof *m);
        memcpy(m + len, f->insns, f->len * sizeof *m);
        free(f->insns);
        f->insns = m;
        f->len = (unsigned short)(f->len + len);
        return 0;
}

int vs_seccomp_prepend(VsSeccomp *f, const int *nrs, const uint32_t *rets, int n, VsError *err)
{
        if (n <= 0)
                return 0;
        if (n > 64)
                return vs_error(err, E2BIG, "seccomp: too many new system calls");
        /* load nr; two compares each, to its return; else past the returns */
        struct sock_filter m[1 + 2 * 64 + 1 + 64];
        size_t k = 0;
        m[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0); /* seccomp_data.nr */
        for (int i = 0; i < n; i++) {
                /* from instruction k, the return of rule i is at 1 + 2n + 1 + i */
                size_t ret_at = 1 + 2 * (size_t)n + 1 + (size_t)i;
                m[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nrs[i],
                                                    (uint8_t)(ret_at - k - 1), 0);
                k++;
                m[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                                    (uint32_t)nrs[i] | X32_SYSCALL_BIT,
                                                    (uint8_t)(ret_at - k - 1), 0);
                k++;
        }
        m[k++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)n);
        for (int i = 0; i < n; i++)
                m[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, rets[i]);
        return put_in_front(f, m, k, err);
}

/* What of the default list this libseccomp cannot name, and file_setattr for privileged guests. */
static int deny_newer(VsSeccomp *f, bool userns, bool fsattr, VsError *err)
{
        int nrs[ARRAY_SIZE(newer)];
        uint32_t rets[ARRAY_SIZE(newer)];
        int n = 0;
        for (const char *const *p = default_deny; *p; p++) {
                if ((userns && in_list(userns_allowed, *p)) ||
                    seccomp_syscall_resolve_name(*p) != __NR_SCMP_ERROR)
                        continue;
                int nr = vs_seccomp_newer_nr(*p);
                if (nr >= 0) {
                        nrs[n] = nr;
                        rets[n++] = SECCOMP_RET_ERRNO | EPERM;
                }
        }
        int fsa = vs_seccomp_newer_nr("file_setattr");
        if (fsattr && fsa >= 0) {
                nrs[n] = fsa;
                rets[n++] = SECCOMP_RET_ERRNO | EPERM;
        }
        return vs_seccomp_prepend(f, nrs, rets, n, err);
}

/*
 * Socket families: what a server needs (unix, IPv4, IPv6, netlink, packet:
 * the last needs NET_RAW anyway), and no others.  AF_VSOCK is not namespaced
 * (it reaches the hypervisor and other VMs); AF_ALG, AF_CAN, AF_TIPC, AF_RDS,
 * Bluetooth and the rest are rarely used code that has been the way into
 * many kernel bugs.  EAFNOSUPPORT: what programs expect from a kernel
 * without the family.
 */
static int add_socket_rules(scmp_filter_ctx ctx, VsError *err)
{
        static const int allowed[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET};
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                 SCMP_A0(SCMP_CMP_GT, AF_PACKET));
        for (int fam = 0; r >= 0 && fam < AF_PACKET; fam++) {
                bool ok = false;
                for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
                        ok |= allowed[i] == fam;
                if (!ok)
                        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                             SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fam));
        }
        if (r < 0)
                return vs_error(err, r, "seccomp socket rules");
        return 0;
}

/*
 * The other ABIs of this CPU (i386 and x32 on x86_64) get the same rules:
 * without them their syscalls would be killed outright, and a filter on one
 * ABI alone is a hole in the others.
 */
static int add_arches(scmp_filter_ctx ctx, VsError *err)
{
#if defined(__x86_64__)
        static const uint32_t arches[] = {SCMP_ARCH_X86, SCMP_ARCH_X32};
#elif defined(__aarch64__)
        static const uint32_t arches[] = {SCMP_ARCH_ARM};
#else
        static const uint32_t arches[] = {0};
#endif
        for (size_t i = 0; i < ARRAY_SIZE(arches); i++) {
                if (!arches[i])
                        continue;
                int r = seccomp_arch_add(ctx, arches[i]);
                if (r < 0 && r != -EEXIST)
                        return vs_error(err, r, "seccomp: add architecture");
        }
        return 0;
}

/*
 * New user namespaces: unshare and clone are filtered on the flag.  clone3
 * passes its flags in memory a filter cannot read, so it answers ENOSYS and
 * libc falls back to clone (glibc and systemd do), as Docker and Podman do.
 */
static int add_userns_rules(scmp_filter_ctx ctx, VsError *err)
{
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r >= 0)
                /* x86_64 clone(flags, ...): flags is the first argument */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return vs_error(err, r, "seccomp user namespace rules");
        return 0;
}

/*
 * A deny-list file extends the built-in list: a file written for one more
 * call must not drop the rest (with SYS_TIME added, that let a guest set
 * the host's clock).  Only the line "!@default" leaves the built-in list out.
 */
static int add_file(scmp_filter_ctx ctx, const char *path, bool userns, VsError *err)
{
        FILE *f = fopen(path, "re");
        char line[256];
        unsigned lineno = 0;
        bool builtin = true;
        int r = 0;

        if (!f)
                return vs_error(err, errno, "seccomp profile %s", path);
        while (fgets(line, sizeof line, f)) {
                char *s = line + strspn(line, " \t");
                if (strncmp(s, "!@default", 9) == 0 && (!s[9] || strchr(" \t\r\n#", s[9])))
                        builtin = false;
        }
        rewind(f);
        if (builtin)
                r = add_default(ctx, userns, err);
        while (r == 0 && fgets(line, sizeof line, f)) {
                lineno++;
                if (!strchr(line, '\n') && !feof(f)) {
                        r = vs_error_input(err, "%s:%u: line too long", path, lineno);
                        break;
                }
                char *s = line + strspn(line, " \t");
                s[strcspn(s, "#\r\n")] = '\0';
                size_t n = strlen(s);
                while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                        s[--n] = '\0';
                if (n == 0)
                        continue;
                if (streq(s, "@default") || streq(s, "!@default"))
                        r = 0; /* the built-in list: in unless "!@default" (above) */
                else if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
                        r = vs_error_input(err,
                                           "%s:%u: \"%s\" is not a syscall name (one name per "
                                           "line, or !@default to leave the built-in list out)",
                                           path, lineno, s);
                else if (seccomp_syscall_resolve_name(s) == __NR_SCMP_ERROR)
                        r = vs_error_input(err, "%s:%u: unknown syscall \"%s\"", path, lineno, s);
                else
                        r = deny(ctx, s, err);
                if (r < 0)
                        break;
        }
        if (r == 0 && ferror(f))
                r = vs_error(err, EIO, "read %s", path);
        fclose(f);
        return r;
}

/* libseccomp 2.5 can only export to an fd: go through a memfd. */
static int export_program(scmp_filter_ctx ctx, VsSeccomp *f, VsError *err)
{
        _cleanup_close_ int fd = memfd_create("vs-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return vs_error(err, errno, "memfd for seccomp");
        int r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return vs_error(err, r, "compile seccomp filter");
        off_t size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
            size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
                return vs_error(err, EINVAL, "seccomp filter has a bad size (%lld bytes)",
                                (long long)size);
        f->insns = malloc((size_t)size);
        if (!f->insns)
                return vs_error(err, ENOMEM, "seccomp");
        if (pread(fd, f->insns, (size_t)size, 0) != size)
                return vs_error(err, errno ? errno : EIO, "read compiled seccomp filter");
        f->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
        return 0;
}

/* The filter of @ctx compiled into *ret (if @r is 0 so far), @ctx released. */
static int finish(scmp_filter_ctx ctx, int r, VsSeccomp **ret, VsError *err)
{
        VsSeccomp *f = NULL;
        if (r == 0) {
                f = calloc(1, sizeof *f);
                r = f ? export_program(ctx, f, err) : vs_error(err, ENOMEM, "seccomp");
        }
        seccomp_release(ctx);
        if (r < 0) {
                vs_seccomp_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

int vs_seccomp_compile(void *ctx, VsSeccomp **ret, VsError *err)
{
        return finish(ctx, 0, ret, err);
}

int vs_seccomp_build(const VsSeccompSpec *spec, VsSeccomp **ret, VsError *err)
{
        *ret = NULL;
        if (spec->mode == VS_SECCOMP_NONE)
                return 0;

        if (spec->mode == VS_SECCOMP_DEFAULT && vs_seccomp_prebuilt_len) {
                int v = spec->userns ? 2 : spec->allow_userns ? 1 : 0;
                VsSeccomp *f = calloc(1, sizeof *f);
                size_t size = vs_seccomp_prebuilt_len[v] * sizeof(struct sock_filter);
                if (!f || !(f->insns = malloc(size))) {
                        free(f);
                        return vs_error(err, ENOMEM, "seccomp");
                }
                memcpy(f->insns, vs_seccomp_prebuilt[v], size);
                f->len = vs_seccomp_prebuilt_len[v];
                *ret = f;
                return 0;
        }

        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return vs_error(err, ENOMEM, "seccomp_init");
        int r = add_arches(ctx, err);
        if (r == 0)
                r = spec->mode == VS_SECCOMP_FILE ? add_file(ctx, spec->file, spec->userns, err)
                                                  : add_default(ctx, spec->userns, err);
        if (r == 0)
                r = add_tty_rules(ctx, err);
        if (r == 0)
                r = add_socket_rules(ctx, err);
        /* nested user namespaces are what a guest's own makes safe (podman inside) */
        if (r == 0 && !spec->allow_userns && !spec->userns)
                r = add_userns_rules(ctx, err);
        if (r == 0 && !spec->userns)
                r = add_fsattr_rules(ctx, err);
        r = finish(ctx, r, ret, err);
        if (r == 0 && (r = deny_newer(*ret, spec->userns, !spec->userns, err)) < 0) {
                vs_seccomp_free(*ret);
                *ret = NULL;
        }
        return r;
}

int vs_seccomp_build_notify(unsigned what, VsSeccomp **ret, VsError *err)
{
        *ret = NULL;
        if (!what)
                return 0;
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return vs_error(err, ENOMEM, "seccomp_init");
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
        if (r == 0 && (what & VS_NOTIFY_UNAME))
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(uname), 0);
        if (r == 0 && (what & VS_NOTIFY_SYSINFO))
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sysinfo), 0);
        if (r < 0)
                r = vs_error(err, -r, "the uname/sysinfo notification filter");
        return finish(ctx, r, ret, err);
}

/*
 * The notification rules in front of @f: on the native architecture (the
 * view server writes native structures), uname and sysinfo go to the
 * listener; everything else on to @f, which starts by loading what it needs.
 */
static int prepend_notify(VsSeccomp *f, unsigned what, VsError *err)
{
        uint32_t nrs[2];
        size_t n = 0;
        if (what & VS_NOTIFY_UNAME)
                nrs[n++] = __NR_uname;
        if (what & VS_NOTIFY_SYSINFO)
                nrs[n++] = __NR_sysinfo;
        if (n == 0)
                return 0;
        /* load arch; not native: on to @f; load nr; a compare each; on to @f; notify */
        size_t len = 3 + n + 2;
        struct sock_filter m[3 + 2 + 2];
        size_t k = 0;
        m[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                              offsetof(struct seccomp_data, arch));
        m[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch_native(), 0,
                                            (uint8_t)(len - k - 1));
        k++;
        m[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                              offsetof(struct seccomp_data, nr));
        for (size_t i = 0; i < n; i++, k++)
                m[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i],
                                                    (uint8_t)(len - 1 - k - 1), 0);
        m[k++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 1);
        m[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
        return put_in_front(f, m, k, err);
}

int vs_seccomp_build_filters(const VsSeccompSpec *spec, unsigned notify, VsSeccomp **ret_deny,
                             VsSeccomp **ret_notify, VsError *err)
{
        *ret_notify = NULL;
        int r = vs_seccomp_build(spec, ret_deny, err);
        if (r < 0)
                return r;
        if (notify && *ret_deny && spec->mode == VS_SECCOMP_DEFAULT) {
                r = prepend_notify(*ret_deny, notify, err);
                if (r == 0) {
                        *ret_notify = *ret_deny;
                        *ret_deny = NULL;
                }
        } else {
                r = vs_seccomp_build_notify(notify, ret_notify, err);
        }
        if (r < 0) {
                vs_seccomp_free(*ret_deny);
                *ret_deny = NULL;
        }
        return r;
}

int vs_seccomp_load_listener(const VsSeccomp *f, VsError *err)
{
        struct sock_fprog prog = {.len = f->len, .filter = f->insns};
        long fd =
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (fd < 0)
                return vs_error(err, errno, "load the uname/sysinfo notification filter");
        return (int)fd;
}

int vs_seccomp_load(const VsSeccomp *f, VsError *err)
{
        if (!f)
                return 0;
        struct sock_fprog prog = {.len = f->len, .filter = f->insns};
        /* Without no_new_privs this needs CAP_SYS_ADMIN: call before dropping caps. */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return vs_error(err, errno, "load seccomp filter");
        return 0;
}

void vs_seccomp_program(const VsSeccomp *f, const struct sock_filter **ret_insns,
                        unsigned short *ret_len)
{
        *ret_insns = f ? f->insns : NULL;
        *ret_len = f ? f->len : 0;
}

void vs_seccomp_free(VsSeccomp *f)
{
        if (!f)
                return;
        free(f->insns);
        free(f);
}
