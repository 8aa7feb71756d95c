/* SPDX-License-Identifier: GPL-2.0-or-later */
/* host check: what this host gives guests, before any starts. */
#include <json-c/json.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../lib/cgroup.h"
#include "../lib/disk.h"
#include "../lib/net.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

/* One line of the report: what, yes or no, and the detail (why not, and the fix). */
typedef struct Item {
        const char *key, *what;
        bool ok;
        char detail[512];
} Item;

static bool has_cap(int cap)
{
        char buf[4096];
        if (vs_read_file_at(AT_FDCWD, "/proc/self/status", buf, sizeof buf) <= 0)
                return false;
        const char *p = strstr(buf, "CapEff:");
        unsigned long long mask = 0;
        return p && sscanf(p + 7, "%llx", &mask) == 1 && (mask >> cap & 1);
}

static int fill(const Host *h, Item *it)
{
        int n = 0;
        struct utsname u;
        char buf[64] = "";
        uname(&u);
        it[n] = (Item){"kernel", "kernel", true, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s", u.release);

        it[n] = (Item){"cgroup", "cgroups", true, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s", vs_cgroup_mode_name(vs_cgroup_mode()));

        char v1[256];
        bool waits = vs_cgroup_moves_wait(v1, sizeof v1);
        it[n] = (Item){"cgroup_moves", "cgroup joins without waiting", !waits, ""};
        if (waits)
                snprintf(it[n++].detail, sizeof it->detail,
                         "v1 hierarchies (%s, ...) without favordynmods: every start and exec "
                         "waits an RCU grace period, milliseconds, to join them; remount the "
                         "cgroup2 tree with favordynmods (v1 alone: mount a hierarchy with it at "
                         "boot; forks and exits cost a little more), or run cgroup2 alone",
                         v1);
        else
                snprintf(it[n++].detail, sizeof it->detail, "%s",
                         vs_cgroup_mode() == VS_CGROUP_V2
                             ? "cgroup2 alone: processes start in their cgroup"
                             : "a hierarchy is mounted with favordynmods");

        bool userns =
            vs_read_file_at(AT_FDCWD, "/proc/sys/user/max_user_namespaces", buf, sizeof buf) > 0 &&
            strtol(buf, NULL, 10) > 0;
        it[n] = (Item){"userns", "user namespaces", userns, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s",
                 !userns          ? "user.max_user_namespaces is 0: set it above 0, or userns = no"
                 : h->conf.userns ? "new guests get their own (userns = yes)"
                                  : "available (new guests get none: userns = no)");

        VsDiskSupport s;
        VsDiskKind want = (VsDiskKind)h->conf.disk_limits;
        vs_disk_probe(h->paths.guests, want, &s);
        it[n] = (Item){"disk_project", "disk limits by project quota", s.project, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s",
                 s.project ? "the guests' filesystem enforces project quotas" : s.why_project);
        it[n] = (Item){"disk_image", "disk limits by an image per guest", s.image, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s",
                 s.image ? "loop devices and mkfs.ext4" : s.why_image);
        it[n] = (Item){"disk", "disk limits for new guests", s.pick != VS_DISK_NONE, ""};
        if (s.pick != VS_DISK_NONE)
                snprintf(it[n++].detail, sizeof it->detail, "%s on %s (%s, disk-limits = %s)",
                         vs_disk_kind_name(s.pick), s.dir, s.fs,
                         want == VS_DISK_NONE ? "auto" : vs_disk_kind_name(want));
        else {
                VsError e = {0};
                char text[512];
                vs_disk_unsupported(&s, want, &e);
                snprintf(it[n++].detail, sizeof it->detail, "%s",
                         vs_error_text(&e, text, sizeof text));
        }
        bool grow = has_cap(CAP_SYS_RESOURCE);
        it[n] = (Item){"disk_image_grows_live", "an image grows while its guest runs", grow, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s",
                 grow ? "root has CAP_SYS_RESOURCE"
                      : "root lacks CAP_SYS_RESOURCE: a larger limits.disk waits for the next "
                        "start (project quotas change at once)");

        bool per_syscall;
        const char *rec = vs_net_unix_recorder(&per_syscall);
        it[n] = (Item){"isolate_syscalls", "isolate, no cost per system call", !per_syscall, ""};
        if (!rec)
                snprintf(it[n++].detail, sizeof it->detail, "%s",
                         "not known until an isolate guest starts on this boot (it records unix "
                         "binds by fentry, else kprobes, else a tracepoint on every system call)");
        else if (per_syscall)
                snprintf(it[n++].detail, sizeof it->detail, "%s",
                         "this kernel refused fentry and kprobes: while isolate guests run, the "
                         "unix bind recorder is the syscall-exit tracepoint, and every system "
                         "call on the host takes the traced path (about 100 ns more); a kernel "
                         "with function tracing (BPF trampolines) or kprobes avoids it");
        else
                snprintf(it[n++].detail, sizeof it->detail,
                         "unix binds are recorded by %s, at the bind alone", rec);

        bool fuse = access("/dev/fuse", R_OK | W_OK) == 0;
        it[n] = (Item){"views", "/proc views", fuse, ""};
        snprintf(it[n++].detail, sizeof it->detail, "%s",
                 fuse ? "/dev/fuse" : "no /dev/fuse (modprobe fuse), or views = no");
        return n;
}

static int verb_host(int argc, char **argv)
{
        static const char verb[] = "host";
        Opts o;
        Host h;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_JSON, verb_host_def.synopsis,
                           verb_host_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (o.optind >= argc || !streq(argv[o.optind], "check"))
                return fail(EXIT_USAGE, verb, "say %s host check", vs_program);
        if (o.optind + 1 < argc)
                return fail(EXIT_USAGE, verb, "unexpected argument \"%s\"", argv[o.optind + 1]);
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        Item it[16];
        int n = fill(&h, it);
        if (o.json) {
                json_object *j = json_object_new_object();
                for (int i = 0; i < n; i++) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "ok", json_object_new_boolean(it[i].ok));
                        json_object_object_add(e, "detail", json_object_new_string(it[i].detail));
                        json_object_object_add(j, it[i].key, e);
                }
                json_print(j);
                json_object_put(j);
                return 0;
        }
        for (int i = 0; i < n; i++)
                printf("%-36s %-3s  %s\n", it[i].what, it[i].ok ? "yes" : "no", it[i].detail);
        return 0;
}

const Verb verb_host_def = {
    .name = "host",
    .run = verb_host,
    .synopsis = "check [--json]",
    .summary = "what this host gives guests: cgroups, user namespaces, disk limits, views",
    .usage = "  --json             machine-readable\n"
             "  --root-dir DIR     the installation under DIR\n",
};
