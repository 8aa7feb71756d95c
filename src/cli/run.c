/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vserver run: a one-off context (util-vserver's chcontext/vcontext + vnamespace). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/context.h"
#include "../lib/rlimit.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

#define MAX_LIST 64

enum {
        OPT_ROOTFS = 256,
        OPT_HOSTNAME,
        OPT_DOMAINNAME,
        OPT_CAP_ADD,
        OPT_CAP_DROP,
        OPT_CAP_HOST,
        OPT_SECCOMP,
        OPT_BIND,
        OPT_NET,
        OPT_RLIMIT,
        OPT_NAME,
        OPT_CGROUP_PARENT,
        OPT_CWD,
        OPT_ENV,
        OPT_ALLOW_NEW_PRIVS,
        OPT_ALLOW_USERNS,
        OPT_READ_ONLY,
        OPT_USERNS,
        OPT_DELEGATE,
};

static const struct option options[] = {
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"domainname", required_argument, NULL, OPT_DOMAINNAME},
    {"cap-add", required_argument, NULL, OPT_CAP_ADD},
    {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
    {"cap-add-host-wide", required_argument, NULL, OPT_CAP_HOST},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"bind", required_argument, NULL, OPT_BIND},
    {"net", required_argument, NULL, OPT_NET},
    {"rlimit", required_argument, NULL, OPT_RLIMIT},
    {"name", required_argument, NULL, OPT_NAME},
    {"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
    {"cwd", required_argument, NULL, OPT_CWD},
    {"env", required_argument, NULL, OPT_ENV},
    {"allow-new-privs", no_argument, NULL, OPT_ALLOW_NEW_PRIVS},
    {"allow-userns", no_argument, NULL, OPT_ALLOW_USERNS},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"userns", optional_argument, NULL, OPT_USERNS},
    {"delegate", no_argument, NULL, OPT_DELEGATE},
    {"tty", no_argument, NULL, 't'},
    {"help", no_argument, NULL, OPTS_HELP},
    {NULL, 0, NULL, 0},
};

static const char synopsis[] = "[OPTIONS] --rootfs DIR -- COMMAND [ARG...]";
static const char usage[] =
    "  --rootfs DIR            the guest's root directory (required)\n"
    "  -t, --tty               give the command a pty (from the guest's own devpts)\n"
    "  --hostname NAME         hostname inside (default: the context name)\n"
    "  --domainname NAME       NIS domain name inside\n"
    "  --cap-add CAP           add a capability to the bounding set (NET_RAW, ALL ...)\n"
    "  --cap-drop CAP          drop one (CHOWN, ALL ...)\n"
    "  --cap-add-host-wide CAP one that acts on the whole host (SYS_TIME, SYS_MODULE,\n"
    "                          SYS_ADMIN, SYS_PTRACE ...): --cap-add refuses those\n"
    "  --seccomp MODE          default | none | FILE (a deny list, one syscall a line)\n"
    "  --bind SRC:DST[:ro]     bind a host path into the guest (DST resolved inside)\n"
    "  --net none|host         none: own network namespace with loopback (default)\n"
    "  --rlimit RES=SOFT[:HARD] a resource limit, e.g. nofile=1024:4096, as=2G\n"
    "  --env NAME=VALUE        set an environment variable (replaces the default set)\n"
    "  --cwd DIR               working directory inside (default /)\n"
    "  --read-only             mount the guest's root read-only\n"
    "  --allow-new-privs       do not set no_new_privs (setuid binaries work)\n"
    "  --allow-userns          let the guest create user namespaces\n"
    "  --userns[=FIRST]        its own user namespace: ids 0-65535 inside are host\n"
    "                          ids FIRST.. (default: a free range of the host's pool,\n"
    "                          given back at exit), the root idmapped\n"
    "  --delegate              let it make cgroups below its own (the leaf NAME/guest\n"
    "                          in cgroup2 and name=systemd, its own with --userns);\n"
    "                          default: one cgroup a hierarchy, none below\n"
    "  --name NAME             the context's name (its cgroup); default run-PID\n"
    "  --cgroup-parent PATH    where its cgroup goes (default $VSERVER_CGROUP_PARENT\n"
    "                          or /vserver; a relative path is taken from our own cgroup)\n"
    "\n"
    "COMMAND runs as PID 1 of the new context; its exit code is ours.\n";

static int verb_run(int argc, char **argv)
{
        static const char verb[] = "run";
        VsContextSpec spec;
        VsBind binds[MAX_LIST];
        VsRlimit rlimits[MAX_LIST];
        char *envs[MAX_LIST + 1];
        int n_envs = 0;
        VsCaps add = 0, drop = 0;
        char name[64];
        VsError err = {0};

        vs_context_spec_init(&spec);
        snprintf(name, sizeof name, "run-%d", (int)getpid());
        spec.name = name;
        spec.cgroup_parent = getenv("VSERVER_CGROUP_PARENT");
        spec.root.binds = binds;
        spec.rlimits = rlimits;

        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:t", options, NULL)) != -1) {
                VsCaps cap;
                switch (c) {
                case OPT_ROOTFS:
                        spec.root.rootfs = optarg;
                        break;
                case OPT_HOSTNAME:
                        if (!vs_hostname_valid(optarg))
                                return fail(EXIT_USAGE, verb,
                                            "--hostname \"%s\" is not a host name (letters, "
                                            "digits, '-' and '.', at most 64)",
                                            optarg);
                        spec.hostname = optarg;
                        break;
                case OPT_DOMAINNAME:
                        if (!vs_hostname_valid(optarg))
                                return fail(EXIT_USAGE, verb,
                                            "--domainname \"%s\" is not a domain name", optarg);
                        spec.domainname = optarg;
                        break;
                case OPT_CAP_ADD:
                case OPT_CAP_DROP:
                case OPT_CAP_HOST:
                        if (vs_caps_from_name(optarg, &cap) < 0)
                                return fail(EXIT_USAGE, verb,
                                            "%s: \"%s\" is not a capability (say NET_RAW or "
                                            "CAP_NET_RAW; see capabilities(7))",
                                            c == OPT_CAP_ADD    ? "--cap-add"
                                            : c == OPT_CAP_DROP ? "--cap-drop"
                                                                : "--cap-add-host-wide",
                                            optarg);
                        if (c == OPT_CAP_ADD && (cap & vs_caps_host_wide())) {
                                char names[512];
                                vs_caps_format(cap & vs_caps_host_wide(), names, sizeof names);
                                return fail(EXIT_USAGE, verb,
                                            "--cap-add: %s acts on the whole host (the kernel "
                                            "has no namespace for it): if that is what you mean, "
                                            "say --cap-add-host-wide %s",
                                            names, optarg);
                        }
                        if (c != OPT_CAP_DROP) {
                                add |= cap;
                                drop &= ~cap;
                        } else {
                                drop |= cap;
                                add &= ~cap;
                        }
                        break;
                case OPT_SECCOMP:
                        if (streq(optarg, "default")) {
                                spec.seccomp.mode = VS_SECCOMP_DEFAULT;
                        } else if (streq(optarg, "none")) {
                                spec.seccomp.mode = VS_SECCOMP_NONE;
                        } else if (optarg[0] == '/' || optarg[0] == '.') {
                                spec.seccomp.mode = VS_SECCOMP_FILE;
                                spec.seccomp.file = optarg;
                        } else {
                                return fail(EXIT_USAGE, verb,
                                            "--seccomp \"%s\": say default, none or a file path "
                                            "(./FILE or /path)",
                                            optarg);
                        }
                        break;
                case OPT_BIND:
                        if (spec.root.n_binds >= MAX_LIST)
                                return fail(EXIT_USAGE, verb, "too many --bind (at most %d)",
                                            MAX_LIST);
                        if (vs_bind_parse(optarg, &binds[spec.root.n_binds], &err) < 0)
                                return fail_error(EXIT_USAGE, verb, &err);
                        spec.root.n_binds++;
                        break;
                case OPT_NET:
                        if (streq(optarg, "none"))
                                spec.net = VS_NET_NONE;
                        else if (streq(optarg, "host"))
                                spec.net = VS_NET_HOST;
                        else
                                return fail(EXIT_USAGE, verb, "--net \"%s\": say none or host",
                                            optarg);
                        break;
                case OPT_RLIMIT:
                        if (spec.n_rlimits >= MAX_LIST)
                                return fail(EXIT_USAGE, verb, "too many --rlimit");
                        if (vs_rlimit_parse(optarg, &rlimits[spec.n_rlimits], &err) < 0)
                                return fail_error(EXIT_USAGE, verb, &err);
                        spec.n_rlimits++;
                        break;
                case OPT_NAME:
                        if (!vs_cgroup_path_valid(optarg) || strchr(optarg, '/') ||
                            strlen(optarg) >= sizeof name)
                                return fail(EXIT_USAGE, verb,
                                            "--name \"%s\" is not a valid name (letters, "
                                            "digits, '.', '_', '-')",
                                            optarg);
                        snprintf(name, sizeof name, "%s", optarg);
                        break;
                case OPT_CGROUP_PARENT:
                        spec.cgroup_parent = optarg;
                        break;
                case OPT_CWD:
                        if (optarg[0] != '/')
                                return fail(EXIT_USAGE, verb, "--cwd \"%s\" must be absolute",
                                            optarg);
                        spec.cwd = optarg;
                        break;
                case OPT_ENV:
                        if (!strchr(optarg, '=') || optarg[0] == '=')
                                return fail(EXIT_USAGE, verb, "--env \"%s\": say NAME=VALUE",
                                            optarg);
                        if (n_envs >= MAX_LIST)
                                return fail(EXIT_USAGE, verb, "too many --env");
                        envs[n_envs++] = optarg;
                        break;
                case OPT_ALLOW_NEW_PRIVS:
                        spec.no_new_privs = false;
                        break;
                case OPT_DELEGATE:
                        spec.delegate = true;
                        break;
                case OPT_ALLOW_USERNS:
                        spec.seccomp.allow_userns = true;
                        break;
                case OPT_READ_ONLY:
                        spec.root.readonly_root = true;
                        break;
                case OPT_USERNS: {
                        unsigned long long first = 0;
                        if (optarg && (vs_parse_u64(optarg, &first) < 0 || first < VS_IDMAP_COUNT ||
                                       first > 0xffffffffULL - VS_IDMAP_COUNT))
                                return fail(EXIT_USAGE, verb,
                                            "--userns=%s: say the first host id of the "
                                            "context's %u (65536 or more), or nothing to take a "
                                            "free range",
                                            optarg, VS_IDMAP_COUNT);
                        /* count set, start 0: a free range of the installation's pool, below */
                        spec.userns =
                            (VsIdRange){.start = (unsigned)first, .count = VS_IDMAP_COUNT};
                        spec.seccomp.userns = true;
                        spec.caps = vs_caps_userns();
                        break;
                }
                case 't':
                        spec.tty = true;
                        break;
                default:
                        return opts_other(c, argv, verb, synopsis, usage);
                }
        }
        if (!spec.root.rootfs)
                return fail(EXIT_USAGE, verb, "--rootfs DIR is required");
        if (optind >= argc)
                return fail(EXIT_USAGE, verb, "no command given (say -- COMMAND [ARG...])");
        struct stat st;
        if (stat(spec.root.rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
                return fail(EXIT_USAGE, verb, "--rootfs %s is not a directory", spec.root.rootfs);
        if (spec.cgroup_parent && !vs_cgroup_path_valid(spec.cgroup_parent))
                return fail(EXIT_USAGE, verb,
                            "cgroup parent \"%s\" is not valid (letters, digits, . _ - and /)",
                            spec.cgroup_parent);
        if (!spec.hostname)
                spec.hostname = name;
        spec.caps = (spec.caps | add) & ~drop;
        spec.argv = argv + optind;
        if (n_envs > 0) {
                envs[n_envs] = NULL;
                spec.envp = envs;
        }

        /* --userns without a range: one from the installation's pool, for as long as we run */
        Host h;
        char owner[80] = "";
        if (spec.userns.count && !spec.userns.start) {
                if (host_load(&h, NULL, verb) < 0 || vs_paths_ensure(&h.paths, &err) < 0)
                        return err.msg[0] ? fail_error(EXIT_FAILURE, verb, &err) : EXIT_FAILURE;
                /* not its name: --name may be a guest's, whose range this must not take */
                snprintf(owner, sizeof owner, VS_IDMAP_RUN_PREFIX "%d", (int)getpid());
                if (vs_idmap_allocate(h.paths.subid, owner, h.conf.userns_first, h.conf.userns_last,
                                      &spec.userns, &err) < 0)
                        return fail_error(EXIT_FAILURE, verb, &err);
        }
        GuestStdio io;
        int code = EXIT_FAILURE;
        if (stdio_pipes(&io, spec.tty, verb) < 0)
                goto out;
        memcpy(spec.stdio, io.guest, sizeof spec.stdio);
        VsContext ctx;
        if (vs_context_start(&spec, &ctx, &err) < 0) {
                stdio_close(&io);
                if (!err.input)
                        vs_error_prefix(&err, "%s", name);
                fail_error(EXIT_FAILURE, verb, &err);
                goto out;
        }
        code = attend(&ctx, &io, spec.tty, verb);
        /* our signals went to PID 1 (which ignores those it has no handler for) */
        if (vs_context_destroy(&ctx, &err) < 0)
                fail_error(0, verb, &err);
out:
        if (owner[0]) {
                /* files its range owns may remain in a writable, unmapped bind */
                bool retire = false;
                for (int i = 0; i < spec.root.n_binds; i++)
                        retire |= !binds[i].readonly && !binds[i].idmap;
                if (vs_idmap_release(h.paths.subid, owner, retire, &err) < 0)
                        fail_error(0, verb, &err);
        }
        return code;
}

const Verb verb_run_def = {
    .name = "run",
    .run = verb_run,
    .enters = true,
    .synopsis = synopsis,
    .summary = "run a command as PID 1 of a new, one-off context",
    .usage = usage,
};
