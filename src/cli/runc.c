/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vserver-runc: runc's command line over the library's OCI runtime, so
 * podman (conmon), containerd (the runc shim) and CRI-O drive vserver
 * contexts.  The same binary as vserver, picked by argv[0].
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../lib/oci.h"
#include "../lib/oci_run.h"
#include "../lib/parse.h"
#include "../lib/selfexe.h"
#include "../lib/util.h"
#include "cli.h"

#ifndef VS_VERSION
#define VS_VERSION "0.0.0"
#endif

/* The global options. */
static struct {
        const char *root;
        const char *log;
        bool log_json;
        bool debug;
        bool systemd_cgroup;
} g = {.root = VS_OCI_DEFAULT_ROOT};

/* An error: on stderr, and in --log as the engine reads it (runc's json or text lines). */
static int report(int code, const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int report(int code, const char *verb, const char *fmt, ...)
{
        char msg[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fail(0, verb, "%s", msg);
        if (g.log) {
                FILE *f = fopen(g.log, "ae");
                if (f) {
                        char when[40];
                        time_t t = time(NULL);
                        struct tm tm;
                        gmtime_r(&t, &tm);
                        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
                        if (g.log_json) {
                                json_object *j = json_object_new_object();
                                json_object_object_add(j, "level", json_object_new_string("error"));
                                json_object_object_add(j, "msg", json_object_new_string(msg));
                                json_object_object_add(j, "time", json_object_new_string(when));
                                fprintf(f, "%s\n",
                                        json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
                                json_object_put(j);
                        } else {
                                fprintf(f, "time=\"%s\" level=error msg=\"%s\"\n", when, msg);
                        }
                        fclose(f);
                }
        }
        return code;
}

static int report_error(const char *verb, const VsError *e)
{
        char buf[VS_ERROR_MSG_MAX + 128];
        return report(e->input ? EXIT_USAGE : EXIT_FAILURE, verb, "%s",
                      vs_error_text(e, buf, sizeof buf));
}

/* ---- options ---- */

typedef struct Opt {
        const char *name; /* long, without -- */
        char short_name;  /* 0: none */
        int kind;         /* FLAG, VALUE, LIST */
        void *ptr;        /* bool *, const char **, or List * */
} Opt;
enum { FLAG, VALUE, LIST };

typedef struct List {
        const char *v[64];
        int n;
} List;

/*
 * runc's grammar: options first, then the operands.  "--x=v", "--x v",
 * "-x v"; "--" ends the options.  Returns the index of the first operand.
 */
static int parse_opts(const char *verb, int argc, char **argv, const Opt *opts, int *ret_first)
{
        int i = 1;
        for (; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--")) {
                        i++;
                        break;
                }
                if (a[0] != '-' || !a[1])
                        break;
                const Opt *o = NULL;
                const char *val = NULL;
                char name[64];
                if (a[1] == '-') {
                        snprintf(name, sizeof name, "%s", a + 2);
                        char *eq = strchr(name, '=');
                        if (eq) {
                                *eq = '\0';
                                val = strchr(a, '=') + 1;
                        }
                        for (const Opt *p = opts; p->name; p++)
                                if (streq(p->name, name))
                                        o = p;
                } else {
                        for (const Opt *p = opts; p->name; p++)
                                if (p->short_name && p->short_name == a[1] && !a[2])
                                        o = p;
                        snprintf(name, sizeof name, "%s", a + 1);
                }
                if (!o)
                        return report(EXIT_USAGE, verb,
                                      "unknown option %s (see vserver-runc help %s)", a, verb),
                               -1;
                if (o->kind == FLAG) {
                        if (val && !streq(val, "true") && !streq(val, "false"))
                                return report(EXIT_USAGE, verb, "--%s takes no value", o->name), -1;
                        *(bool *)o->ptr = !val || streq(val, "true");
                        continue;
                }
                if (!val) {
                        if (i + 1 >= argc)
                                return report(EXIT_USAGE, verb, "%s needs a value", a), -1;
                        val = argv[++i];
                }
                if (o->kind == VALUE) {
                        *(const char **)o->ptr = val;
                } else {
                        List *l = o->ptr;
                        if (l->n == (int)ARRAY_SIZE(l->v))
                                return report(EXIT_USAGE, verb, "too many --%s", o->name), -1;
                        l->v[l->n++] = val;
                }
        }
        *ret_first = i;
        return 0;
}

static int one_id(const char *verb, int argc, char **argv, int first, const char **ret)
{
        if (first >= argc)
                return report(EXIT_USAGE, verb, "no container id given"), -1;
        if (first + 1 < argc)
                return report(EXIT_USAGE, verb, "one container id, not \"%s\" too",
                              argv[first + 1]),
                       -1;
        *ret = argv[first];
        return 0;
}

static int parse_int(const char *verb, const char *opt, const char *s, int *ret)
{
        unsigned long long v;
        if (!s)
                return 0;
        if (vs_parse_u64(s, &v) < 0 || v > 1024)
                return report(EXIT_USAGE, verb, "%s %s: a number from 0 to 1024", opt, s), -1;
        *ret = (int)v;
        return 0;
}

/* ---- verbs ---- */

static int do_create(int argc, char **argv, bool run)
{
        const char *verb = argv[0], *bundle = ".", *console = NULL, *pid_file = NULL,
                   *preserve = NULL, *id;
        bool detach = false, no_pivot = false, no_keyring = false, keep = false;
        const Opt opts[] = {
            {"bundle", 'b', VALUE, &bundle},
            {"console-socket", 0, VALUE, &console},
            {"pid-file", 0, VALUE, &pid_file},
            {"preserve-fds", 0, VALUE, &preserve},
            {"no-pivot", 0, FLAG, &no_pivot},
            {"no-new-keyring", 0, FLAG, &no_keyring},
            {"detach", 'd', FLAG, &detach},
            {"keep", 0, FLAG, &keep},
            {NULL, 0, 0, NULL},
        };
        int first, preserve_n = 0;
        if (parse_opts(verb, argc, argv, opts, &first) < 0 ||
            one_id(verb, argc, argv, first, &id) < 0 ||
            parse_int(verb, "--preserve-fds", preserve, &preserve_n) < 0)
                return EXIT_USAGE;
        if (!run && (detach || keep))
                return report(EXIT_USAGE, verb, "--detach and --keep are for run");
        VsError err = {0};
        int pty = -1;
        GuestStdio io = {.guest = {0, 1, 2}, .ours = {-EBADF, -EBADF, -EBADF}};
        /* the host settings isolate takes its device and unix guard from */
        Host host;
        if (host_load(&host, NULL, verb) < 0)
                return EXIT_FAILURE;
        bool relay = false;
        if (run && !detach) {
                /* our own terminal never reaches the container: pipes we relay */
                struct stat st;
                for (int i = 0; i < 3 && !relay; i++)
                        relay =
                            fstat(i, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
                if (relay && stdio_pipes(&io, false, verb) < 0)
                        return EXIT_FAILURE;
        }
        VsOciCreateOpts o = {.root = g.root,
                             .id = id,
                             .bundle = bundle,
                             .console_socket = console,
                             .pid_file = pid_file,
                             .preserve_fds = preserve_n,
                             .systemd_cgroup = g.systemd_cgroup,
                             .no_new_keyring = no_keyring,
                             .net_device = host.conf.net_device,
                             .unix_guard = host.conf.unix_guard_cgroup,
                             .stdio = io.guest,
                             .ret_pty = run && !detach && !console ? &pty : NULL};
        pid_t pid = 0;
        int r = vs_oci_create(&o, &pid, &err);
        if (r < 0) {
                if (relay)
                        stdio_close(&io);
                return report_error(verb, &err);
        }
        if (!run)
                return 0;
        /* our child: a pidfd before start, so its end cannot be missed */
        VsContext ctx = VS_CONTEXT_INIT;
        ctx.pid = pid;
        ctx.pidfd = pidfd_open(pid, 0);
        ctx.pty_master = pty;
        if (vs_oci_start(g.root, id, &err) < 0) {
                vs_oci_delete(g.root, id, true, NULL);
                if (relay)
                        stdio_close(&io);
                return report_error(verb, &err);
        }
        if (detach) {
                vs_context_release(&ctx);
                return 0;
        }
        int code;
        if (pty >= 0 || relay) {
                code = attend(&ctx, &io, pty >= 0, verb);
        } else {
                if (vs_context_wait(&ctx, &code, &err) < 0)
                        code = report_error(verb, &err);
        }
        vs_context_release(&ctx);
        if (!keep && vs_oci_delete(g.root, id, true, &err) < 0)
                report_error(verb, &err);
        return code;
}

static int verb_create(int argc, char **argv)
{
        return do_create(argc, argv, false);
}

static int verb_run(int argc, char **argv)
{
        return do_create(argc, argv, true);
}

static int simple(int argc, char **argv, const char **id)
{
        int first;
        const Opt opts[] = {{NULL, 0, 0, NULL}};
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0 ||
            one_id(argv[0], argc, argv, first, id) < 0)
                return -1;
        return 0;
}

static int verb_start(int argc, char **argv)
{
        const char *id;
        VsError err = {0};
        if (simple(argc, argv, &id) < 0)
                return EXIT_USAGE;
        return vs_oci_start(g.root, id, &err) < 0 ? report_error(argv[0], &err) : 0;
}

static int verb_state(int argc, char **argv)
{
        const char *id;
        VsError err = {0};
        VsOciState s;
        if (simple(argc, argv, &id) < 0)
                return EXIT_USAGE;
        if (vs_oci_state(g.root, id, &s, &err) < 0)
                return report_error(argv[0], &err);
        _cleanup_free_ char *t = vs_oci_state_json(g.root, &s);
        printf("%s\n", t ? t : "{}");
        return 0;
}

static int verb_kill(int argc, char **argv)
{
        bool all = false;
        const Opt opts[] = {{"all", 'a', FLAG, &all}, {NULL, 0, 0, NULL}};
        int first;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0)
                return EXIT_USAGE;
        if (first >= argc || argc - first > 2)
                return report(EXIT_USAGE, argv[0], "say ID [SIGNAL]");
        int sig = SIGTERM;
        if (argc - first == 2) {
                sig = vs_signal_from_name(argv[first + 1]);
                if (sig <= 0)
                        return report(EXIT_USAGE, argv[0],
                                      "\"%s\" is not a signal (a number, or a name: TERM, KILL, "
                                      "SIGHUP ...)",
                                      argv[first + 1]);
        }
        VsError err = {0};
        return vs_oci_kill(g.root, argv[first], sig, all, &err) < 0 ? report_error(argv[0], &err)
                                                                    : 0;
}

static int verb_delete(int argc, char **argv)
{
        bool force = false;
        const Opt opts[] = {{"force", 'f', FLAG, &force}, {NULL, 0, 0, NULL}};
        int first;
        const char *id;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0 ||
            one_id(argv[0], argc, argv, first, &id) < 0)
                return EXIT_USAGE;
        VsError err = {0};
        int r = vs_oci_delete(g.root, id, force, &err);
        /* runc: --force on a container that is not there is not an error */
        if (r == -ENOENT && force)
                return 0;
        return r < 0 ? report_error(argv[0], &err) : 0;
}

static int verb_pause(int argc, char **argv)
{
        const char *id;
        VsError err = {0};
        if (simple(argc, argv, &id) < 0)
                return EXIT_USAGE;
        return vs_oci_pause(g.root, id, streq(argv[0], "pause"), &err) < 0
                   ? report_error(argv[0], &err)
                   : 0;
}

static int verb_ps(int argc, char **argv)
{
        const char *format = "table";
        const Opt opts[] = {{"format", 'f', VALUE, &format}, {NULL, 0, 0, NULL}};
        int first;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0)
                return EXIT_USAGE;
        if (first >= argc)
                return report(EXIT_USAGE, argv[0], "no container id given");
        if (!streq(format, "table") && !streq(format, "json"))
                return report(EXIT_USAGE, argv[0], "--format %s: table or json", format);
        pid_t *pids = NULL;
        int n = 0;
        VsError err = {0};
        if (vs_oci_pids(g.root, argv[first], &pids, &n, &err) < 0)
                return report_error(argv[0], &err);
        if (streq(format, "json")) {
                json_object *a = json_object_new_array();
                for (int i = 0; i < n; i++)
                        json_object_array_add(a, json_object_new_int(pids[i]));
                printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
                json_object_put(a);
        } else {
                printf("%-8s %s\n", "PID", "CMD");
                for (int i = 0; i < n; i++) {
                        char path[64], comm[64] = "?";
                        snprintf(path, sizeof path, "/proc/%d/comm", (int)pids[i]);
                        ssize_t k = vs_read_file_at(AT_FDCWD, path, comm, sizeof comm);
                        if (k > 0 && comm[k - 1] == '\n')
                                comm[k - 1] = '\0';
                        /* a process names itself: nothing of it reaches the terminal raw */
                        for (char *c = comm; *c; c++)
                                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                                        *c = '?';
                        printf("%-8d %s\n", (int)pids[i], comm);
                }
        }
        free(pids);
        return 0;
}

static int verb_list(int argc, char **argv)
{
        const char *format = "table";
        bool quiet = false;
        const Opt opts[] = {
            {"format", 'f', VALUE, &format}, {"quiet", 'q', FLAG, &quiet}, {NULL, 0, 0, NULL}};
        int first;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0)
                return EXIT_USAGE;
        if (first < argc)
                return report(EXIT_USAGE, argv[0], "takes no operands");
        if (!streq(format, "table") && !streq(format, "json"))
                return report(EXIT_USAGE, argv[0], "--format %s: table or json", format);
        char **ids = NULL;
        VsError err = {0};
        if (vs_oci_list(g.root, &ids, &err) < 0)
                return report_error(argv[0], &err);
        json_object *a = json_object_new_array();
        if (!quiet && streq(format, "table"))
                printf("%-20s %-8s %-10s %-40s %-31s %s\n", "ID", "PID", "STATUS", "BUNDLE",
                       "CREATED", "OWNER");
        for (int i = 0; ids[i]; i++) {
                VsOciState s;
                if (vs_oci_state(g.root, ids[i], &s, NULL) < 0)
                        continue;
                if (quiet)
                        printf("%s\n", s.id);
                else if (streq(format, "table"))
                        printf("%-20s %-8d %-10s %-40s %-31s %s\n", s.id, (int)s.pid,
                               vs_oci_status_name(s.status), s.bundle, s.created,
                               s.owner[0] ? s.owner : "root");
                else {
                        _cleanup_free_ char *t = vs_oci_state_json(g.root, &s);
                        json_object_array_add(a, t ? json_tokener_parse(t) : NULL);
                }
                free(ids[i]);
        }
        if (!quiet && streq(format, "json"))
                printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
        json_object_put(a);
        free(ids);
        return 0;
}

/* The single update flags, as a linux.resources object. */
static int update_flags(const char *verb, const char *const vals[], json_object *res)
{
        static const struct {
                const char *opt, *section, *key;
                bool text;
        } map[] = {
            {"memory", "memory", "limit", false},
            {"memory-reservation", "memory", "reservation", false},
            {"memory-swap", "memory", "swap", false},
            {"kernel-memory", "memory", "kernel", false},
            {"cpu-shares", "cpu", "shares", false},
            {"cpu-quota", "cpu", "quota", false},
            {"cpu-period", "cpu", "period", false},
            {"cpuset-cpus", "cpu", "cpus", true},
            {"cpuset-mems", "cpu", "mems", true},
            {"pids-limit", "pids", "limit", false},
            {"blkio-weight", "blockIO", "weight", false},
        };
        for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
                if (!vals[i])
                        continue;
                json_object *sec;
                if (!json_object_object_get_ex(res, map[i].section, &sec)) {
                        sec = json_object_new_object();
                        json_object_object_add(res, map[i].section, sec);
                }
                if (map[i].text) {
                        json_object_object_add(sec, map[i].key, json_object_new_string(vals[i]));
                        continue;
                }
                unsigned long long v;
                long long n;
                if (streq(vals[i], "-1"))
                        n = -1;
                else if (vs_parse_size(vals[i], &v) == 0 && v <= INT64_MAX)
                        n = (long long)v;
                else
                        return report(EXIT_USAGE, verb, "--%s %s: a number (sizes take k, m, g)",
                                      map[i].opt, vals[i]);
                json_object_object_add(sec, map[i].key, json_object_new_int64(n));
        }
        return 0;
}

static int verb_update(int argc, char **argv)
{
        const char *resources = NULL, *v[11] = {0};
        const Opt opts[] = {
            {"resources", 'r', VALUE, &resources},
            {"memory", 'm', VALUE, &v[0]},
            {"memory-reservation", 0, VALUE, &v[1]},
            {"memory-swap", 0, VALUE, &v[2]},
            {"kernel-memory", 0, VALUE, &v[3]},
            {"cpu-shares", 'c', VALUE, &v[4]},
            {"cpu-quota", 0, VALUE, &v[5]},
            {"cpu-period", 'p', VALUE, &v[6]},
            {"cpuset-cpus", 0, VALUE, &v[7]},
            {"cpuset-mems", 0, VALUE, &v[8]},
            {"pids-limit", 0, VALUE, &v[9]},
            {"blkio-weight", 0, VALUE, &v[10]},
            {NULL, 0, 0, NULL},
        };
        int first;
        const char *id;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0 ||
            one_id(argv[0], argc, argv, first, &id) < 0)
                return EXIT_USAGE;
        _cleanup_free_ char *text = NULL;
        if (resources) {
                size_t len = 0;
                FILE *f = streq(resources, "-") ? stdin : fopen(resources, "re");
                if (!f)
                        return report(EXIT_USAGE, argv[0], "--resources %s: %s", resources,
                                      strerror(errno));
                char buf[65536];
                len = fread(buf, 1, sizeof buf - 1, f);
                if (f != stdin)
                        fclose(f);
                buf[len] = '\0';
                text = strdup(buf);
        } else {
                json_object *res = json_object_new_object();
                if (update_flags(argv[0], v, res) != 0) {
                        json_object_put(res);
                        return EXIT_USAGE;
                }
                text = strdup(json_object_to_json_string(res));
                json_object_put(res);
        }
        VsError err = {0};
        return vs_oci_update(g.root, id, text ? text : "{}", &err) < 0 ? report_error(argv[0], &err)
                                                                       : 0;
}

static int verb_events(int argc, char **argv)
{
        bool stats = false;
        const char *interval = "5s";
        const Opt opts[] = {
            {"stats", 0, FLAG, &stats}, {"interval", 0, VALUE, &interval}, {NULL, 0, 0, NULL}};
        int first;
        const char *id;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0 ||
            one_id(argv[0], argc, argv, first, &id) < 0)
                return EXIT_USAGE;
        uint64_t us;
        if (vs_parse_duration_us(interval, &us) < 0 || us < 100000)
                return report(EXIT_USAGE, argv[0], "--interval %s: a time of at least 100ms (5s)",
                              interval);
        for (;;) {
                VsError err = {0};
                char *t = NULL;
                if (vs_oci_stats(g.root, id, &t, &err) < 0)
                        return stats ? report_error(argv[0], &err) : 0;
                printf("%s\n", t);
                fflush(stdout);
                free(t);
                if (stats)
                        return 0;
                usleep((useconds_t)(us > 60000000 ? 60000000 : us));
        }
}

static int verb_exec(int argc, char **argv)
{
        const char *console = NULL, *cwd = NULL, *user = NULL, *process = NULL, *pid_file = NULL,
                   *preserve = NULL, *label = NULL, *apparmor = NULL, *cgroup = NULL;
        bool tty = false, detach = false, nnp = false;
        List env = {0}, caps = {0}, gids = {0};
        const Opt opts[] = {
            {"console-socket", 0, VALUE, &console},
            {"cwd", 0, VALUE, &cwd},
            {"env", 'e', LIST, &env},
            {"tty", 't', FLAG, &tty},
            {"user", 'u', VALUE, &user},
            {"additional-gids", 'g', LIST, &gids},
            {"process", 'p', VALUE, &process},
            {"detach", 'd', FLAG, &detach},
            {"pid-file", 0, VALUE, &pid_file},
            {"process-label", 0, VALUE, &label},
            {"apparmor", 0, VALUE, &apparmor},
            {"no-new-privs", 0, FLAG, &nnp},
            {"cap", 'c', LIST, &caps},
            {"preserve-fds", 0, VALUE, &preserve},
            {"cgroup", 0, VALUE, &cgroup},
            {NULL, 0, 0, NULL},
        };
        int first, preserve_n = 0;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0 ||
            parse_int(argv[0], "--preserve-fds", preserve, &preserve_n) < 0)
                return EXIT_USAGE;
        if (first >= argc)
                return report(EXIT_USAGE, argv[0], "no container id given");
        if ((label && label[0]) || (apparmor && apparmor[0]))
                return report(EXIT_USAGE, argv[0],
                              "neither SELinux nor AppArmor runs on this "
                              "host (drop --process-label/--apparmor)");
        if (cgroup)
                return report(EXIT_USAGE, argv[0],
                              "--cgroup: an exec joins the container's "
                              "own cgroup only");
        for (int i = 0; i < env.n; i++)
                if (!strchr(env.v[i], '='))
                        return report(EXIT_USAGE, argv[0], "--env %s: say NAME=VALUE", env.v[i]);
        gid_t groups[64];
        for (int i = 0; i < gids.n; i++) {
                unsigned long long gid;
                if (vs_parse_u64(gids.v[i], &gid) < 0 || gid >= UINT32_MAX)
                        return report(EXIT_USAGE, argv[0], "--additional-gids %s: a group id",
                                      gids.v[i]);
                groups[i] = (gid_t)gid;
        }
        int pty = -1;
        const char *envv[65];
        memcpy(envv, env.v, sizeof(char *) * (size_t)env.n);
        envv[env.n] = NULL;
        VsOciExecOpts o = {.root = g.root,
                           .id = argv[first],
                           .process_file = process,
                           .args = argv + first + 1,
                           .env = (char *const *)(uintptr_t)envv,
                           .cwd = cwd,
                           .user = user,
                           .groups = groups,
                           .n_groups = gids.n,
                           .caps = caps.v,
                           .n_caps = caps.n,
                           .no_new_privs = nnp,
                           .tty = tty,
                           .console_socket = console,
                           .pid_file = pid_file,
                           .preserve_fds = preserve_n,
                           .ret_pty = &pty};
        GuestStdio io = {.guest = {0, 1, 2}, .ours = {-EBADF, -EBADF, -EBADF}};
        VsError err = {0};
        int pidfd = -1;
        if (vs_oci_exec(&o, &pidfd, &err) < 0)
                return report_error(argv[0], &err);
        VsContext ctx = VS_CONTEXT_INIT;
        ctx.pidfd = pidfd;
        ctx.pty_master = pty;
        if (detach) {
                vs_context_release(&ctx);
                return 0;
        }
        int code;
        if (pty >= 0)
                code = attend(&ctx, &io, true, argv[0]);
        else if (vs_context_wait(&ctx, &code, &err) < 0)
                code = report_error(argv[0], &err);
        vs_context_release(&ctx);
        return code;
}

static int verb_spec(int argc, char **argv)
{
        const char *bundle = ".";
        bool rootless = false;
        const Opt opts[] = {
            {"bundle", 'b', VALUE, &bundle}, {"rootless", 0, FLAG, &rootless}, {NULL, 0, 0, NULL}};
        int first;
        if (parse_opts(argv[0], argc, argv, opts, &first) < 0)
                return EXIT_USAGE;
        if (first < argc)
                return report(EXIT_USAGE, argv[0], "takes no operands");
        _cleanup_free_ char *t = vs_oci_default_spec(rootless);
        _cleanup_close_ int dir = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (!t || dir < 0)
                return report(EXIT_FAILURE, argv[0], "bundle %s: %s", bundle,
                              t ? strerror(errno) : "out of memory");
        int fd = openat(dir, "config.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return report(EXIT_FAILURE, argv[0], "%s/config.json: %s%s", bundle,
                              strerror(errno), errno == EEXIST ? " (remove it first)" : "");
        int r = vs_write_all(fd, t, strlen(t));
        if (r == 0)
                r = vs_write_all(fd, "\n", 1);
        close(fd);
        return r < 0 ? report(EXIT_FAILURE, argv[0], "write config.json: %s", strerror(-r)) : 0;
}

static int verb_features(int argc, char **argv)
{
        if (argc > 1)
                return report(EXIT_USAGE, argv[0], "takes no operands");
        _cleanup_free_ char *t = vs_oci_features();
        printf("%s\n", t ? t : "{}");
        return 0;
}

static int verb_checkpoint(int argc, char **argv)
{
        (void)argc;
        return report(EXIT_FAILURE, argv[0],
                      "checkpoint and restore are not supported yet (they come with CRIU); "
                      "stop and start the container instead");
}

static const struct {
        const char *name;
        int (*run)(int, char **);
        bool enters;
        const char *help;
} runc_verbs[] = {
    {"create", verb_create, true, "create a container from a bundle, ready to start"},
    {"start", verb_start, false, "run the process of a created container"},
    {"run", verb_run, true, "create and start; wait for it unless --detach"},
    {"state", verb_state, false, "the container's state (JSON)"},
    {"kill", verb_kill, false, "signal the container's process (--all: every process)"},
    {"delete", verb_delete, false, "remove a stopped container (--force: any)"},
    {"exec", verb_exec, true, "run a process in a running container"},
    {"ps", verb_ps, false, "the container's processes (--format json)"},
    {"pause", verb_pause, false, "freeze every process of the container"},
    {"resume", verb_pause, false, "thaw a paused container"},
    {"update", verb_update, false, "change the resource limits of a running container"},
    {"events", verb_events, false, "resource use (--stats: once)"},
    {"list", verb_list, false, "the containers under --root"},
    {"spec", verb_spec, false, "write a default config.json"},
    {"features", verb_features, false, "what this runtime implements (JSON)"},
    {"checkpoint", verb_checkpoint, false, "(not supported yet)"},
    {"restore", verb_checkpoint, false, "(not supported yet)"},
};

static void runc_usage(FILE *f)
{
        fprintf(f, "Usage: vserver-runc [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n\n"
                   "An OCI runtime with runc's command line, running vserver contexts.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < ARRAY_SIZE(runc_verbs); i++)
                fprintf(f, "  %-11s %s\n", runc_verbs[i].name, runc_verbs[i].help);
        fprintf(f, "\nGlobal options:\n"
                   "  --root DIR            state directory (default " VS_OCI_DEFAULT_ROOT ")\n"
                   "  --log FILE            errors go here too\n"
                   "  --log-format text|json\n"
                   "  --systemd-cgroup      refused where systemd is not PID 1\n"
                   "  --debug, --rootless VALUE, --criu PATH: accepted\n\n"
                   "See vserver-runc(8), in vserver(8) OCI RUNTIME.\n");
}

int runc_main(int argc, char **argv)
{
        vs_program = "vserver-runc";
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i], *val = NULL;
                char name[64];
                snprintf(name, sizeof name, "%s", a);
                char *eq = strchr(name, '=');
                if (eq) {
                        *eq = '\0';
                        val = strchr(a, '=') + 1;
                }
                bool takes = streq(name, "--root") || streq(name, "--log") ||
                             streq(name, "--log-format") || streq(name, "--rootless") ||
                             streq(name, "--criu");
                if (takes && !val) {
                        if (i + 1 >= argc)
                                return report(EXIT_USAGE, NULL, "%s needs a value", a);
                        val = argv[++i];
                }
                if (streq(name, "--root"))
                        g.root = val;
                else if (streq(name, "--log"))
                        g.log = val;
                else if (streq(name, "--log-format")) {
                        if (!streq(val, "json") && !streq(val, "text"))
                                return report(EXIT_USAGE, NULL, "--log-format %s: text or json",
                                              val);
                        g.log_json = streq(val, "json");
                } else if (streq(name, "--debug"))
                        g.debug = true;
                else if (streq(name, "--systemd-cgroup"))
                        g.systemd_cgroup = true;
                else if (streq(name, "--rootless") || streq(name, "--criu"))
                        ;
                else if (streq(name, "--version") || streq(name, "-v")) {
                        printf("vserver-runc version %s\nspec: %s\n", VS_VERSION, VS_OCI_VERSION);
                        return 0;
                } else if (streq(name, "--help") || streq(name, "-h")) {
                        runc_usage(stdout);
                        return 0;
                } else
                        return report(EXIT_USAGE, NULL, "unknown global option %s", a);
        }
        if (i >= argc) {
                runc_usage(stderr);
                return EXIT_USAGE;
        }
        if (streq(argv[i], "help")) {
                runc_usage(stdout);
                return 0;
        }
        if (streq(argv[i], "version")) {
                printf("vserver-runc version %s\nspec: %s\n", VS_VERSION, VS_OCI_VERSION);
                return 0;
        }
        for (size_t k = 0; k < ARRAY_SIZE(runc_verbs); k++) {
                if (!streq(runc_verbs[k].name, argv[i]))
                        continue;
                if (runc_verbs[k].enters) {
                        VsError err = {0};
                        extern char **environ;
                        if (vs_selfexe_reexec_sealed(argv, environ, &err) < 0)
                                return report_error(argv[i], &err);
                }
                return runc_verbs[k].run(argc - i, argv + i);
        }
        return report(EXIT_USAGE, NULL, "unknown command \"%s\" (see vserver-runc help)", argv[i]);
}
