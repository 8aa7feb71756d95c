/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vserver build: a new guest from a template, built aside and renamed into place. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/template.h"
#include "../lib/tree.h"
#include "../lib/util.h"
#include "cli.h"

static void on_signal(int sig)
{
        (void)sig;
        vs_tree_interrupted = 1;
}

/* Builds killed with SIGKILL leave .NAME.build-PID behind: sweep those whose PID is gone. */
static void sweep_stale_builds(const VsPaths *p)
{
        DIR *d = opendir(p->guests);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *b = strstr(de->d_name, ".build-");
                if (de->d_name[0] != '.' || !b)
                        continue;
                long pid = strtol(b + 7, NULL, 10);
                if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                        continue;
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", p->guests, de->d_name);
                vs_tree_remove(path, NULL);
        }
        closedir(d);
}

static bool has_etc(const char *root)
{
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/etc", root);
        return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum {
        OPT_TEMPLATE = 256,
        OPT_HOSTNAME,
        OPT_DOMAINNAME,
        OPT_CONTEXT,
        OPT_MEMORY,
        OPT_PROCESSES,
        OPT_SWAP,
        OPT_CPUS,
        OPT_CPU_WEIGHT,
        OPT_CPUSET,
        OPT_INIT,
        OPT_AUTOSTART,
        OPT_NET,
        OPT_ADDRESS,
        OPT_GATEWAY,
        OPT_SUITE,
        OPT_MIRROR,
        OPT_DEBIAN_INIT,
        OPT_SET,
        OPT_ROOT_DIR,
        OPT_USERNS,
        OPT_NO_USERNS,
        OPT_HELP,
};

static const struct option options[] = {
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"domainname", required_argument, NULL, OPT_DOMAINNAME},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"processes", required_argument, NULL, OPT_PROCESSES},
    {"swap", required_argument, NULL, OPT_SWAP},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT},
    {"cpuset", required_argument, NULL, OPT_CPUSET},
    {"init", required_argument, NULL, OPT_INIT},
    {"autostart", no_argument, NULL, OPT_AUTOSTART},
    {"net", required_argument, NULL, OPT_NET},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"gateway", required_argument, NULL, OPT_GATEWAY},
    {"suite", required_argument, NULL, OPT_SUITE},
    {"mirror", required_argument, NULL, OPT_MIRROR},
    {"debian-init", required_argument, NULL, OPT_DEBIAN_INIT},
    {"set", required_argument, NULL, OPT_SET},
    {"root-dir", required_argument, NULL, OPT_ROOT_DIR},
    {"userns", no_argument, NULL, OPT_USERNS},
    {"no-userns", no_argument, NULL, OPT_NO_USERNS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char synopsis[] = "NAME [--template busybox|debian|DIR|TARBALL|clone:OTHER] [OPTIONS]";
static const char usage[] =
    "  --template T       busybox (default: offline, under a second), debian\n"
    "                     (debootstrap), a directory, a tarball, or clone:OTHER\n"
    "  --hostname NAME    the guest's host name (default: the guest's name)\n"
    "  --domainname NAME  its NIS domain name\n"
    "  --context ID       its context id (default: the lowest free one)\n"
    "  --memory SIZE      memory limit, e.g. 512M\n"
    "  --processes N      process limit\n"
    "  --swap SIZE        swap on top of --memory (0: none)\n"
    "  --cpus N           CPU limit in CPUs, e.g. 1.5 (cpu.max)\n"
    "  --cpu-weight W     CPU weight, 1-10000 (100: the default)\n"
    "  --cpuset LIST      the CPUs it may run on, e.g. 0-1\n"
    "  --init CMD         PID 1 (default /sbin/init; \"none\": a built-in reaper)\n"
    "  --net MODE         isolate (default): the host's stack, kept to the guest's\n"
    "                     addresses; netns: its own stack on a bridge; none:\n"
    "                     loopback only; host: unrestricted\n"
    "  --address A        IP/PREFIX[@DEVICE], e.g. 192.0.2.10/24@eth0 (repeatable)\n"
    "  --gateway IP       netns: the default route (repeatable, one per family)\n"
    "  --autostart        start it with vserver start --autostart (at boot)\n"
    "  --userns           its root is not the host's: a user namespace of its own,\n"
    "                     65536 host ids of its own (the default, unless the host\n"
    "                     setting userns = no)\n"
    "  --no-userns        its root is the host's root, held back by capabilities\n"
    "                     and seccomp (Linux-VServer's and privileged LXC's model)\n"
    "  --set KEY=VALUE    any guest file key, e.g. --set limits.nofile=4096\n"
    "  --suite S          debian: the suite (default from the host settings, bookworm)\n"
    "  --mirror URL       debian: the mirror\n"
    "  --debian-init I    debian: systemd (default) or sysvinit\n"
    "  --root-dir DIR     the installation under DIR (default $VSERVER_ROOT or /)\n";

typedef struct BuildOpts {
        const char *template_arg;
        const char *root_dir;
        const char *suite, *mirror;
        bool sysvinit;
        const char *sets[64][2]; /* key, value (value points into argv) */
        const char *where[64];
        int n_sets;
} BuildOpts;

static int add_set(BuildOpts *b, const char *key, const char *value, const char *where)
{
        if (b->n_sets >= 64)
                return -1;
        b->sets[b->n_sets][0] = key;
        b->sets[b->n_sets][1] = value;
        b->where[b->n_sets] = where;
        b->n_sets++;
        return 0;
}

static int verb_build(int argc, char **argv)
{
        static const char verb[] = "build";
        BuildOpts b = {.template_arg = "busybox"};
        Host h;
        VsGuest g;
        VsError err = {0};
        char setkeys[64][128];
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
                const char *key = NULL, *where = NULL;
                switch (c) {
                case OPT_TEMPLATE:
                        b.template_arg = optarg;
                        break;
                case OPT_ROOT_DIR:
                        b.root_dir = optarg;
                        break;
                case OPT_SUITE:
                        b.suite = optarg;
                        break;
                case OPT_MIRROR:
                        b.mirror = optarg;
                        break;
                case OPT_DEBIAN_INIT:
                        if (!streq(optarg, "systemd") && !streq(optarg, "sysvinit"))
                                return fail(EXIT_USAGE, verb,
                                            "--debian-init \"%s\": say systemd or sysvinit",
                                            optarg);
                        b.sysvinit = streq(optarg, "sysvinit");
                        break;
                case OPT_HOSTNAME:
                        key = "guest.hostname";
                        where = "--hostname";
                        break;
                case OPT_DOMAINNAME:
                        key = "guest.domainname";
                        where = "--domainname";
                        break;
                case OPT_CONTEXT:
                        key = "guest.context";
                        where = "--context";
                        break;
                case OPT_MEMORY:
                        key = "limits.memory";
                        where = "--memory";
                        break;
                case OPT_PROCESSES:
                        key = "limits.processes";
                        where = "--processes";
                        break;
                case OPT_SWAP:
                        key = "limits.swap";
                        where = "--swap";
                        break;
                case OPT_CPUS:
                        key = "limits.cpu.limit";
                        where = "--cpus";
                        break;
                case OPT_CPU_WEIGHT:
                        key = "limits.cpu.weight";
                        where = "--cpu-weight";
                        break;
                case OPT_CPUSET:
                        key = "limits.cpuset";
                        where = "--cpuset";
                        break;
                case OPT_INIT:
                        key = "guest.init";
                        where = "--init";
                        break;
                case OPT_NET:
                        key = "net.mode";
                        where = "--net";
                        break;
                case OPT_ADDRESS:
                        key = "net.address";
                        where = "--address";
                        break;
                case OPT_GATEWAY:
                        key = "net.gateway";
                        where = "--gateway";
                        break;
                case OPT_AUTOSTART:
                        if (add_set(&b, "guest.autostart", "yes", "--autostart") < 0)
                                return fail(EXIT_USAGE, verb, "too many options");
                        break;
                case OPT_USERNS:
                case OPT_NO_USERNS:
                        if (add_set(&b, "security.userns", c == OPT_USERNS ? "yes" : "no",
                                    c == OPT_USERNS ? "--userns" : "--no-userns") < 0)
                                return fail(EXIT_USAGE, verb, "too many options");
                        break;
                case OPT_SET: {
                        const char *eq = strchr(optarg, '=');
                        int i = b.n_sets;
                        if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof setkeys[0])
                                return fail(EXIT_USAGE, verb, "--set \"%s\": say SECTION.KEY=VALUE",
                                            optarg);
                        snprintf(setkeys[i], sizeof setkeys[i], "%.*s", (int)(eq - optarg), optarg);
                        if (add_set(&b, setkeys[i], eq + 1, "--set") < 0)
                                return fail(EXIT_USAGE, verb, "too many options");
                        break;
                }
                case OPT_HELP:
                        printf("Usage: %s build %s\n\n%s", vs_program, synopsis, usage);
                        return 0;
                case ':':
                        return fail(EXIT_USAGE, verb, "%s needs a value", argv[optind - 1]);
                default:
                        return fail(EXIT_USAGE, verb, "unknown option %s (see %s help build)",
                                    argv[optind - 1], vs_program);
                }
                if (key && add_set(&b, key, optarg, where) < 0)
                        return fail(EXIT_USAGE, verb, "too many options");
        }
        if (optind != argc - 1)
                return fail(EXIT_USAGE, verb, "name one guest to build (say %s build NAME)",
                            vs_program);
        const char *name = argv[optind];
        if (host_load(&h, b.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (vs_guest_init(&g, &h.paths, &h.conf, h.cgroup_parent, name, &err) < 0)
                return fail_error(EXIT_USAGE, verb, &err);
        g.cfg.userns = h.conf.userns; /* the host's default for new guests */
        for (int i = 0; i < b.n_sets; i++) {
                /* "--memory" rather than the key in errors about build options */
                const char *w = b.where[i];
                if (w[0] != '-')
                        w = b.sets[i][0];
                if (vs_guest_config_set(&g.cfg, b.sets[i][0], b.sets[i][1], w, &err) < 0)
                        return fail_error(EXIT_USAGE, verb, &err);
        }
        if (vs_guest_config_check(&g.cfg, "options", &err) < 0)
                return fail_error(EXIT_USAGE, verb, &err);
        /* what this host must have for it: known now, not at its first start */
        if (vs_limits_check_host(&g.cfg.limits, &err) < 0)
                return fail_error(EXIT_USAGE, verb, &err);
        if (g.cfg.net == VS_NET_ISOLATE &&
            vs_net_isolate_check(&g.cfg.netcfg, h.conf.net_device, &err) < 0)
                return fail_error(EXIT_USAGE, verb, &err);

        /* the template */
        enum { T_BUSYBOX, T_DEBIAN, T_DIR, T_TARBALL, T_CLONE } kind;
        const char *src = b.template_arg;
        VsGuest other;
        struct stat st;
        if (streq(src, "busybox")) {
                kind = T_BUSYBOX;
        } else if (streq(src, "debian")) {
                kind = T_DEBIAN;
        } else if (strncmp(src, "clone:", 6) == 0) {
                int code;
                kind = T_CLONE;
                if (guest_load(&other, &h, src + 6, verb, &code) < 0)
                        return code;
                VsGuestState ost;
                if (vs_guest_state(&other, &ost, &err) < 0)
                        return fail_error(EXIT_FAILURE, verb, &err);
                bool running = ost.running;
                vs_guest_state_release(&ost);
                if (running)
                        return fail(EXIT_FAILURE, verb, "%s is running; stop it before cloning it",
                                    other.cfg.name);
        } else if (src[0] == '/' && stat(src, &st) == 0 && S_ISDIR(st.st_mode)) {
                kind = T_DIR;
        } else if (src[0] == '/' && stat(src, &st) == 0 && S_ISREG(st.st_mode)) {
                kind = T_TARBALL;
        } else {
                return fail(EXIT_USAGE, verb,
                            "--template \"%s\": say busybox, debian, clone:GUEST, or the absolute "
                            "path of a directory or tarball",
                            src);
        }
        if ((b.suite || b.mirror || b.sysvinit) && kind != T_DEBIAN)
                return fail(EXIT_USAGE, verb,
                            "--suite, --mirror and --debian-init are for "
                            "--template debian");
        if (b.mirror && strncmp(b.mirror, "http://", 7) && strncmp(b.mirror, "https://", 8) &&
            strncmp(b.mirror, "file:/", 6))
                return fail(EXIT_USAGE, verb, "--mirror \"%s\" is not an http(s):// or file:/ URL",
                            b.mirror);
        if (b.suite)
                for (const char *p = b.suite; *p; p++)
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                                return fail(EXIT_USAGE, verb, "--suite \"%s\" is not a suite name",
                                            b.suite);
        if (b.sysvinit && !g.cfg.stop_signal)
                g.cfg.stop_signal = SIGPWR;

        if (vs_paths_ensure(&h.paths, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        _cleanup_close_ int lock = -EBADF;
        if (guest_lock(&g, verb, &lock) < 0)
                return EXIT_FAILURE;
        if (access(g.conf, F_OK) == 0)
                return fail(EXIT_FAILURE, verb, "guest %s exists (%s)", name, g.conf);
        if (access(g.dir, F_OK) == 0)
                return fail(EXIT_FAILURE, verb,
                            "%s exists without a guest file (left by a crash? %s delete %s)", g.dir,
                            vs_program, name);
        /* the context id: given and unused, or the lowest free one, held until the file is written
         */
        if (vs_guest_reserve_context(&h.paths, &h.conf, name, &g.cfg.context, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        sweep_stale_builds(&h.paths);

        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char tmp[PATH_MAX], tmproot[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s/.%s.build-%d", h.paths.guests, name, (int)getpid());
        snprintf(tmproot, sizeof tmproot, "%s/rootfs", tmp);
        int r = 0;
        if (mkdir(tmp, 0700) < 0) {
                r = vs_error(&err, errno, "mkdir %s", tmp);
                goto fail;
        }
        switch (kind) {
        case T_BUSYBOX:
                r = mkdir(tmproot, 0755) < 0 ? vs_error(&err, errno, "mkdir %s", tmproot)
                                             : vs_template_busybox(tmproot, &err);
                break;
        case T_DEBIAN: {
                VsDebianSpec ds = {.suite = b.suite ? b.suite : h.conf.suite,
                                   .mirror = b.mirror ? b.mirror : h.conf.mirror,
                                   .sysvinit = b.sysvinit};
                fprintf(stderr, "%s: build: debootstrap %s from %s into %s\n", vs_program, ds.suite,
                        ds.mirror, name);
                r = mkdir(tmproot, 0755) < 0 ? vs_error(&err, errno, "mkdir %s", tmproot)
                                             : vs_template_debian(tmproot, &ds, &err);
                break;
        }
        case T_DIR:
                r = vs_tree_copy(src, tmproot, &err);
                break;
        case T_CLONE:
                r = vs_tree_copy(other.rootfs, tmproot, &err);
                break;
        case T_TARBALL:
                r = mkdir(tmproot, 0755) < 0 ? vs_error(&err, errno, "mkdir %s", tmproot)
                                             : vs_tree_extract(src, tmproot, &err);
                break;
        }
        if (r == 0 && vs_tree_interrupted)
                r = vs_error(&err, EINTR, "interrupted");
        /* a root filesystem, not any file or directory */
        if (r == 0 && (kind == T_DIR || kind == T_TARBALL) && !has_etc(tmproot))
                r = vs_error_input(&err,
                                   "--template %s has no /etc: not a root file system (say a "
                                   "directory or tarball of one, busybox, debian or clone:GUEST)",
                                   src);
        if (r == 0)
                r = vs_template_identity(tmproot, &g.cfg, &err);
        if (r < 0)
                goto fail;
        /* the guest's root directory is root's, whatever the template said */
        if (chown(tmproot, 0, 0) < 0 || chmod(tmproot, 0755) < 0) {
                r = vs_error(&err, errno, "chown %s", tmproot);
                goto fail;
        }
        if (rename(tmp, g.dir) < 0) {
                r = vs_error(&err, errno, "rename %s to %s", tmp, g.dir);
                goto fail;
        }
        if (vs_guest_config_save(&g.cfg, g.conf, &err) < 0) {
                vs_tree_remove(g.dir, NULL);
                vs_guest_release_context(&h.paths, g.cfg.context);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        vs_guest_release_context(&h.paths, g.cfg.context);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "%s: built %s (context %u) from %s in %.1fs\n", vs_program, name,
                g.cfg.context, src,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        note_io_v1(verb, &g.cfg.limits);
        return 0;
fail:
        vs_tree_remove(tmp, NULL);
        vs_guest_release_context(&h.paths, g.cfg.context);
        if (err.code == EINTR) {
                fail(0, verb, "%s: interrupted; nothing was left behind", name);
                return 130;
        }
        vs_error_prefix(&err, "%s", name);
        return fail_error(EXIT_FAILURE, verb, &err);
}

const Verb verb_build_def = {
    .name = "build",
    .run = verb_build,
    .synopsis = synopsis,
    .summary = "make a new guest from a template",
    .usage = usage,
};
