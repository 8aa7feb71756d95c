/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "template.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "paths.h"
#include "syscalls.h"
#include "tree.h"
#include "util.h"

extern char **environ;

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* The directory part of @path opened inside the root, its last part in @ret_base. */
static int open_parent(int rootfd, const char *path, const char **ret_base)
{
        char dir[PATH_MAX];
        while (*path == '/')
                path++;
        const char *slash = strrchr(path, '/');
        *ret_base = slash ? slash + 1 : path;
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        int fd = vs_openat2(rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        return fd < 0 ? -errno : fd;
}

int vs_write_in_root(int rootfd, const char *path, const char *content, int mode, VsError *err)
{
        const char *base;
        _cleanup_close_ int dfd = open_parent(rootfd, path, &base);
        if (dfd < 0)
                return vs_error(err, dfd, "open the directory of %s", path);
        char tmp[300];
        snprintf(tmp, sizeof tmp, ".%s.vserver-tmp", base);
        unlinkat(dfd, tmp, 0);
        _cleanup_close_ int fd =
            openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return vs_error(err, errno, "create %s", path);
        if (vs_write_all(fd, content, strlen(content)) < 0 || fchmod(fd, (mode_t)mode) < 0 ||
            renameat(dfd, tmp, dfd, base) < 0) {
                int e = errno;
                unlinkat(dfd, tmp, 0);
                return vs_error(err, e, "write %s", path);
        }
        return 0;
}

static int mkdirs(int rootfd, const char *const *dirs, VsError *err)
{
        for (const char *const *d = dirs; *d; d += 2) {
                const char *base;
                _cleanup_close_ int dfd = open_parent(rootfd, *d, &base);
                mode_t mode = (mode_t)strtol(d[1], NULL, 8);
                if (dfd < 0)
                        return vs_error(err, dfd, "mkdir %s", *d);
                if (mkdirat(dfd, base, mode) < 0 && errno != EEXIST)
                        return vs_error(err, errno, "mkdir %s", *d);
                if (fchmodat(dfd, base, mode, 0) < 0)
                        return vs_error(err, errno, "chmod %s", *d);
        }
        return 0;
}

/* A static binary has no program interpreter. */
static int is_static_elf(int fd)
{
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
            memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64)
                return 0;
        for (int i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof ph,
                          (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) !=
                    (ssize_t)sizeof ph)
                        return 0;
                if (ph.p_type == PT_INTERP)
                        return 0;
        }
        return 1;
}

/* Run @argv with stdout into @buf (NUL-terminated). */
static int capture(char *const argv[], char *buf, size_t size, VsError *err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return vs_error(err, errno, "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        pid_t pid;
        int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (e) {
                close(p[0]);
                return vs_error(err, e, "run %s", argv[0]);
        }
        ssize_t n = vs_read_all(p[0], buf, size - 1);
        close(p[0]);
        buf[n > 0 ? n : 0] = '\0';
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n <= 0)
                return vs_error(err, EIO, "%s failed", argv[0]);
        return 0;
}

static const char busybox_inittab[] =
    "# busybox init in a vserver guest: no gettys, the console is the log\n"
    "::sysinit:/etc/init.d/rcS\n"
    "::respawn:/sbin/syslogd -n -O /var/log/messages\n"
    "::shutdown:/etc/init.d/rcK\n";
static const char busybox_rcS[] = "#!/bin/sh\n"
                                  "# Start the services in /etc/init.d/S??* in order.\n"
                                  "for s in /etc/init.d/S??*; do\n"
                                  "\t[ -x \"$s\" ] && \"$s\" start\n"
                                  "done\n"
                                  "echo \"$(hostname) is up\"\n";
static const char busybox_rcK[] = "#!/bin/sh\n"
                                  "# Stop the services in reverse order.\n"
                                  "for s in $(ls -r /etc/init.d/S??* 2>/dev/null); do\n"
                                  "\t[ -x \"$s\" ] && \"$s\" stop\n"
                                  "done\n";
static const char busybox_profile[] =
    "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    "PS1='\\u@\\h:\\w\\$ '\n"
    "umask 022\n";

int vs_template_busybox(const char *rootfs, VsError *err)
{
        static char host_busybox[] = "/bin/busybox";
        static const char *const dirs[] = {"bin",
                                           "755",
                                           "sbin",
                                           "755",
                                           "usr",
                                           "755",
                                           "usr/bin",
                                           "755",
                                           "usr/sbin",
                                           "755",
                                           "etc",
                                           "755",
                                           "etc/init.d",
                                           "755",
                                           "root",
                                           "700",
                                           "home",
                                           "755",
                                           "tmp",
                                           "1777",
                                           "var",
                                           "755",
                                           "var/log",
                                           "755",
                                           "var/spool",
                                           "755",
                                           "var/spool/cron",
                                           "755",
                                           "var/spool/cron/crontabs",
                                           "700",
                                           "proc",
                                           "555",
                                           "sys",
                                           "555",
                                           "dev",
                                           "755",
                                           "run",
                                           "755",
                                           "mnt",
                                           "755",
                                           NULL};
        _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return vs_error(err, errno, "open %s", rootfs);
        int r = mkdirs(rootfd, dirs, err);
        if (r < 0)
                return r;

        _cleanup_close_ int in = open(host_busybox, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return vs_error(err, errno, "open %s (install busybox-static)", host_busybox);
        if (!is_static_elf(in))
                return vs_error(err, ENOEXEC, "%s is not a static binary (install busybox-static)",
                                host_busybox);
        _cleanup_close_ int bin =
            vs_openat2(rootfd, "bin", O_RDONLY | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        _cleanup_close_ int out =
            bin < 0 ? -1
                    : openat(bin, "busybox", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                             0755);
        if (out < 0)
                return vs_error(err, errno, "create /bin/busybox");
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
                if (vs_write_all(out, buf, (size_t)n) < 0)
                        return vs_error(err, errno, "write /bin/busybox");
        if (n < 0 || fchmod(out, 0755) < 0)
                return vs_error(err, errno, "copy /bin/busybox");
        /* the package's time, as a copy with cp -p has it: guests' copies stay alike */
        struct stat st;
        if (fstat(in, &st) == 0) {
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                (void)futimens(out, ts);
        }

        /* one link per applet, where busybox itself says it belongs */
        static char list_full[] = "--list-full";
        char *argv[] = {host_busybox, list_full, NULL};
        static char applets[65536];
        r = capture(argv, applets, sizeof applets, err);
        if (r < 0)
                return r;
        for (char *save = NULL, *a = strtok_r(applets, "\n", &save); a;
             a = strtok_r(NULL, "\n", &save)) {
                const char *base;
                if (streq(a, "linuxrc") || strstr(a, "..") || streq(a, "bin/busybox"))
                        continue;
                _cleanup_close_ int dfd = open_parent(rootfd, a, &base);
                if (dfd < 0)
                        continue; /* a directory we do not make */
                if (symlinkat("/bin/busybox", dfd, base) < 0 && errno != EEXIST)
                        return vs_error(err, errno, "link %s", a);
        }

        static const struct {
                const char *path, *content;
                int mode;
        } files[] = {
            {"etc/inittab", busybox_inittab, 0644},
            {"etc/init.d/rcS", busybox_rcS, 0755},
            {"etc/init.d/rcK", busybox_rcK, 0755},
            {"etc/profile", busybox_profile, 0644},
            {"etc/passwd",
             "root:x:0:0:root:/root:/bin/sh\n"
             "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
             0644},
            {"etc/group", "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n", 0644},
            {"etc/shadow",
             "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
             "nobody:*:19000:0:99999:7:::\n",
             0640},
            {"etc/fstab", "# the guest's filesystems are mounted by vserver start\n", 0644},
            {"etc/resolv.conf", "", 0644},
            {"etc/shells", "/bin/sh\n/bin/ash\n", 0644},
            {"etc/os-release",
             "NAME=\"BusyBox\"\nID=busybox\nPRETTY_NAME=\"BusyBox (vserver "
             "template)\"\n",
             0644},
        };
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                r = vs_write_in_root(rootfd, files[i].path, files[i].content, files[i].mode, err);
                if (r < 0)
                        return r;
        }
        /* the host's resolver, if it has a plain one */
        char resolv[4096];
        if (vs_read_file_at(AT_FDCWD, "/etc/resolv.conf", resolv, sizeof resolv) > 0) {
                r = vs_write_in_root(rootfd, "etc/resolv.conf", resolv, 0644, err);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int var =
            vs_openat2(rootfd, "var", O_RDONLY | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        if (var < 0 || symlinkat("../run", var, "run") < 0)
                return vs_error(err, errno, "link /var/run");
        return 0;
}

int vs_template_identity(const char *rootfs, const VsGuestConfig *cfg, VsError *err)
{
        _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return vs_error(err, errno, "open %s", rootfs);
        char buf[1024];
        snprintf(buf, sizeof buf, "%s\n", cfg->hostname);
        int r = vs_write_in_root(rootfd, "etc/hostname", buf, 0644, err);
        if (r < 0)
                return r;
        const char *dot = strchr(cfg->hostname, '.');
        char shortname[65] = "";
        if (dot)
                snprintf(shortname, sizeof shortname, " %.*s", (int)(dot - cfg->hostname),
                         cfg->hostname);
        snprintf(buf, sizeof buf,
                 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "127.0.1.1\t%s%s\n",
                 cfg->hostname, shortname);
        r = vs_write_in_root(rootfd, "etc/hosts", buf, 0644, err);
        if (r < 0)
                return r;
        unsigned char id[16];
        if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
                return vs_error(err, errno, "getrandom");
        id[6] = (id[6] & 0x0f) | 0x40; /* a v4 UUID, as systemd-machine-id-setup makes */
        id[8] = (id[8] & 0x3f) | 0x80;
        for (size_t i = 0; i < sizeof id; i++)
                snprintf(buf + 2 * i, 3, "%02x", id[i]);
        buf[32] = '\n';
        buf[33] = '\0';
        return vs_write_in_root(rootfd, "etc/machine-id", buf, 0444, err);
}

static int mask_unit(int rootfd, const char *unit, VsError *err)
{
        _cleanup_close_ int dfd =
            vs_openat2(rootfd, "etc/systemd/system", O_RDONLY | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        if (dfd < 0)
                return vs_error(err, errno, "open /etc/systemd/system");
        unlinkat(dfd, unit, 0);
        if (symlinkat("/dev/null", dfd, unit) < 0)
                return vs_error(err, errno, "mask %s", unit);
        return 0;
}

int vs_template_debian_fixup(const char *rootfs, bool sysvinit, VsError *err)
{
        _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return vs_error(err, errno, "open %s", rootfs);
        int r =
            vs_write_in_root(rootfd, "etc/fstab",
                             "# No disks: vserver start mounts what the guest needs.\n", 0644, err);
        if (r < 0)
                return r;
        if (!sysvinit) {
                static const char *const dirs[] = {"etc/systemd", "755", "etc/systemd/system",
                                                   "755", NULL};
                r = mkdirs(rootfd, dirs, err);
                /* no gettys (the console is a log) and no udev (the host owns devices) */
                static const char *const masked[] = {"console-getty.service",
                                                     "getty@.service",
                                                     "serial-getty@.service",
                                                     "container-getty@.service",
                                                     "systemd-udevd.service",
                                                     "systemd-udevd-control.socket",
                                                     "systemd-udevd-kernel.socket",
                                                     "systemd-udev-trigger.service",
                                                     "systemd-udev-settle.service",
                                                     "systemd-hwdb-update.service",
                                                     "systemd-modules-load.service",
                                                     "systemd-sysctl.service",
                                                     "systemd-timesyncd.service",
                                                     "systemd-journald-audit.socket",
                                                     "sys-kernel-config.mount",
                                                     "sys-kernel-debug.mount",
                                                     "sys-kernel-tracing.mount",
                                                     "sys-fs-fuse-connections.mount",
                                                     "systemd-remount-fs.service",
                                                     "systemd-firstboot.service",
                                                     "dev-hugepages.mount",
                                                     "systemd-binfmt.service",
                                                     "proc-sys-fs-binfmt_misc.automount",
                                                     NULL};
                for (const char *const *u = masked; r == 0 && *u; u++)
                        r = mask_unit(rootfd, *u, err);
                return r;
        }
        /* sysvinit: stop on SIGPWR, no gettys */
        r = vs_write_in_root(rootfd, "etc/inittab",
                             "# sysvinit in a vserver guest\n"
                             "id:2:initdefault:\n"
                             "si::sysinit:/etc/init.d/rcS\n"
                             "l0:0:wait:/etc/init.d/rc 0\n"
                             "l1:1:wait:/etc/init.d/rc 1\n"
                             "l2:2:wait:/etc/init.d/rc 2\n"
                             "l3:3:wait:/etc/init.d/rc 3\n"
                             "l4:4:wait:/etc/init.d/rc 4\n"
                             "l5:5:wait:/etc/init.d/rc 5\n"
                             "l6:6:wait:/etc/init.d/rc 6\n"
                             "pf::powerwait:/sbin/shutdown -h now\n",
                             0644, err);
        return r;
}

int vs_template_debian(const char *rootfs, const VsDebianSpec *spec, VsError *err)
{
        char include[128];
        snprintf(include, sizeof include, "--include=%s",
                 spec->sysvinit ? "sysvinit-core,procps" : "systemd-sysv,dbus,procps");
        char suite[64], mirror[512], root[PATH_MAX];
        snprintf(suite, sizeof suite, "%s", spec->suite);
        snprintf(mirror, sizeof mirror, "%s", spec->mirror);
        snprintf(root, sizeof root, "%s", rootfs);
        static char prog[] = "debootstrap", variant[] = "--variant=minbase";
        char *argv[] = {prog, variant, include, suite, root, mirror, NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        /* its progress goes to our stderr, so stdout stays clean for --json users */
        posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        /* its own process group, so an interrupt reaches wget & co. under it too */
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
        pid_t pid;
        int e = posix_spawnp(&pid, prog, &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (e)
                return vs_error(err, e, "run debootstrap (install debootstrap)");
        int status;
        for (;;) {
                if (waitpid(pid, &status, 0) >= 0)
                        break;
                if (errno != EINTR)
                        return vs_error(err, errno, "wait for debootstrap");
                if (!vs_tree_interrupted)
                        continue;
                /* a shell waits for its child before it acts on TERM: signal them all */
                kill(-pid, SIGTERM);
                for (int i = 0; i < 50 && waitpid(pid, &status, WNOHANG) == 0; i++)
                        usleep(100000);
                kill(-pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                break;
        }
        if (vs_tree_interrupted)
                return vs_error(err, EINTR, "interrupted");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                /* its own message said why: ours names what to check, without an errno */
                return vs_error_input(err,
                                      "debootstrap %s from %s failed (exit %d, its message is "
                                      "above: check --suite and --mirror, or the host setting "
                                      "debian-mirror)",
                                      spec->suite, spec->mirror,
                                      WIFEXITED(status) ? WEXITSTATUS(status)
                                                        : 128 + WTERMSIG(status));
        return vs_template_debian_fixup(rootfs, spec->sysvinit, err);
}
