/* SPDX-License-Identifier: GPL-2.0-or-later */
/* list (vserver-stat), ps (vps), kill (vkill): the host's view of its guests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/stats.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

extern char **environ;

static long long uptime_s(unsigned long long start)
{
        if (!start)
                return -1;
        struct timespec now;
        clock_gettime(CLOCK_BOOTTIME, &now);
        return (long long)now.tv_sec -
               (long long)(start / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static const char *fmt_bytes(unsigned long long v, char *buf, size_t size);

/* "62M/64M": used and limit; "-" without a limit or while not known. */
static void disk_column(const VsDiskUsage *d, char *buf, size_t size)
{
        char a[16], b[16];
        if (!d->known || d->kind == VS_DISK_NONE)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%s/%s", fmt_bytes(d->bytes, a, sizeof a),
                         d->bytes_limit == VS_UNLIMITED ? "-"
                                                        : fmt_bytes(d->bytes_limit, b, sizeof b));
}

static const char *fmt_bytes(unsigned long long v, char *buf, size_t size)
{
        if (v == VS_STAT_NONE) {
                snprintf(buf, size, "-");
                return buf;
        }
        static const char units[] = "KMGT";
        double d = (double)v;
        int u = -1;
        while (d >= 1024 && u < 3) {
                d /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, size, "%llu", v);
        else
                snprintf(buf, size, "%.1f%c", d, units[u]);
        return buf;
}

/* vserver-stat's "1m13s57": minutes, seconds, hundredths. */
static const char *fmt_us(uint64_t us, char *buf, size_t size)
{
        if (us == VS_STAT_NONE) {
                snprintf(buf, size, "-");
                return buf;
        }
        unsigned long long cs = us / 10000;
        snprintf(buf, size, "%llum%02llus%02llu", cs / 6000, cs / 100 % 60, cs % 100);
        return buf;
}

static const char *fmt_uptime(long long s, char *buf, size_t size)
{
        if (s < 0)
                snprintf(buf, size, "-");
        else if (s >= 86400)
                snprintf(buf, size, "%lldd%02lldh%02lld", s / 86400, s / 3600 % 24, s / 60 % 60);
        else
                snprintf(buf, size, "%lldh%02lldm%02lld", s / 3600, s / 60 % 60, s % 60);
        return buf;
}

/*
 * One guest's row of the listing, made by any of the workers.  Small: a
 * thousand rows of a whole VsError each were a megabyte of fresh pages to
 * fault in, some 15 us a page on a VM.
 */
typedef struct Row {
        char *text;     /* the table's line, or NULL */
        json_object *j; /* its --json object, or NULL */
        VsError *err;   /* why its guest file could not be read (NULL: out of memory) */
        bool broken;
} Row;

typedef struct ListJob {
        const Host *h;
        const Opts *o;
        char **names;
        Row *rows;
        int n;
        atomic_int next;
} ListJob;

static void list_row(const ListJob *job, int i)
{
        const Host *h = job->h;
        const char *name = job->names[i];
        Row *row = &job->rows[i];
        VsGuest g;
        VsGuestState st = {.init_pidfd = -EBADF, .cgroup = VS_CGROUP_INIT};
        VsError err = {0};
        row->broken = vs_guest_load(&g, &h->paths, &h->conf, h->cgroup_parent, name, &err) < 0;
        if (row->broken) {
                row->err = malloc(sizeof *row->err);
                if (row->err)
                        *row->err = err;
                vs_guest_init(&g, &h->paths, &h->conf, h->cgroup_parent, name, NULL);
        }
        if (vs_guest_state_brief(&g, &st, NULL) < 0 || (!st.running && !job->o->all)) {
                vs_guest_state_release(&st);
                return;
        }
        /* no socket count here: a readlink per open file of every guest */
        VsStats s;
        unsigned what = job->o->json ? 0 : VS_STATS_BRIEF;
        bool have = st.running && vs_stats_read(&st.cgroup, &s, what, NULL) == 0;
        if (!have)
                s.processes = s.vsz = s.rss = 0;
        else if (s.processes == VS_STAT_NONE)
                s.processes = (uint64_t)st.nproc; /* the brief stats read no process */
        long long up = st.init ? uptime_s(st.init_start) : -1;
        VsDiskUsage disk;
        VsDiskTree tree = vs_guest_disk_tree(&g);
        (void)vs_disk_usage(&tree, &disk, NULL);
        char ctx[16], b1[16], b2[16], t1[32], t2[32], t3[32], dk[40];
        disk_column(&disk, dk, sizeof dk);
        snprintf(ctx, sizeof ctx, "%u", g.cfg.context);
        if (job->o->json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "name", json_object_new_string(name));
                json_object_object_add(j, "context", json_object_new_int((int)g.cfg.context));
                json_object_object_add(j, "state",
                                       json_object_new_string(st.frozen    ? "suspended"
                                                              : st.running ? "running"
                                                                           : "stopped"));
                json_object_object_add(j, "processes", json_object_new_int64((int64_t)s.processes));
                json_object_object_add(j, "vsz_bytes", json_object_new_int64((int64_t)s.vsz));
                json_object_object_add(j, "rss_bytes", json_object_new_int64((int64_t)s.rss));
                /* one source per figure: the cgroup's counters, as the table */
                double user = have ? (double)s.cg.cpu_user_us / 1e6 : 0;
                double sys = have ? (double)s.cg.cpu_system_us / 1e6 : 0;
                json_object_object_add(j, "user_seconds", json_object_new_double(user));
                json_object_object_add(j, "system_seconds", json_object_new_double(sys));
                json_object_object_add(j, "uptime_seconds",
                                       up >= 0 ? json_object_new_int64(up) : NULL);
                if (have)
                        stats_to_json(&s, j);
                disk_to_json(&disk, j);
                row->j = j;
        } else if (st.running && have) {
                char thr[24], oom[24], b3[16], b4[16];
                snprintf(thr, sizeof thr, "%llu", (unsigned long long)s.threads);
                if (s.cg.oom_kills == VS_STAT_NONE)
                        snprintf(oom, sizeof oom, "-");
                else
                        snprintf(oom, sizeof oom, "%llu", (unsigned long long)s.cg.oom_kills);
                if (asprintf(
                        &row->text, "%-6s %5d %5s %9s %9s %10s %10s %9s %9s %4s %13s %10s %s%s\n",
                        ctx, (int)s.processes, thr, fmt_bytes(s.cg.mem_current, b1, sizeof b1),
                        fmt_bytes(s.cg.swap_current, b2, sizeof b2),
                        fmt_us(s.cg.cpu_user_us, t1, sizeof t1),
                        fmt_us(s.cg.cpu_system_us, t2, sizeof t2),
                        fmt_bytes(s.cg.io_read_bytes, b3, sizeof b3),
                        fmt_bytes(s.cg.io_write_bytes, b4, sizeof b4), oom, dk,
                        fmt_uptime(up, t3, sizeof t3), name, st.frozen ? " (suspended)" : "") < 0)
                        row->text = NULL;
        } else {
                if (asprintf(&row->text,
                             "%-6s %5s %5s %9s %9s %10s %10s %9s %9s %4s %13s %10s %s (stopped)\n",
                             ctx, "-", "-", "-", "-", "-", "-", "-", "-", "-", dk, "-", name) < 0)
                        row->text = NULL;
        }
        vs_guest_state_release(&st);
}

static void *list_worker(void *data)
{
        ListJob *job = data;
        for (int i; (i = atomic_fetch_add(&job->next, 1)) < job->n;)
                list_row(job, i);
        return NULL;
}

/* Rows made on every CPU (a thousand guests are ten thousand cgroup files), printed in order. */
static void list_rows(ListJob *job)
{
        enum { MAX_WORKERS = 8, PER_WORKER = 32 };
        pthread_t t[MAX_WORKERS];
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int want = (int)(cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : cpus);
        if (want > job->n / PER_WORKER)
                want = job->n / PER_WORKER;
        int started = 0;
        for (; started < want - 1; started++)
                if (pthread_create(&t[started], NULL, list_worker, job) != 0)
                        break;
        list_worker(job);
        for (int i = 0; i < started; i++)
                pthread_join(t[i], NULL);
}

static int verb_list(int argc, char **argv)
{
        static const char verb[] = "list";
        Opts o;
        Host h;
        VsError err = {0};
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_JSON | O_ALL, verb_list_def.synopsis,
                           verb_list_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (o.optind < argc)
                return fail(EXIT_USAGE, verb, "unexpected argument \"%s\"", argv[o.optind]);
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        char **names;
        int n;
        if (vs_guest_list(&h.paths, &names, &n, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        Row *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
        if (!rows) {
                vs_guest_names_free(names, n);
                return fail(EXIT_FAILURE, verb, "out of memory");
        }
        json_object *arr = o.json ? json_object_new_array() : NULL;
        if (!o.json)
                printf("%-6s %5s %5s %9s %9s %10s %10s %9s %9s %4s %13s %10s %s\n", "CTX", "PROC",
                       "THR", "MEM", "SWAP", "userTIME", "sysTIME", "IO-READ", "IO-WRITE", "OOM",
                       "DISK", "UPTIME", "NAME");
        ListJob job = {.h = &h, .o = &o, .names = names, .rows = rows, .n = n};
        atomic_init(&job.next, 0);
        if (h.cgroup_parent)
                (void)vs_cgroup_lookups_below(h.cgroup_parent); /* else whole paths */
        list_rows(&job);
        int rc = 0;
        for (int i = 0; i < n; i++) {
                if (rows[i].broken) {
                        if (rows[i].err)
                                fail_error(0, verb, rows[i].err);
                        else
                                fail(0, verb, "%s: out of memory", names[i]);
                        free(rows[i].err);
                        rc = EXIT_FAILURE;
                }
                if (rows[i].j)
                        json_object_array_add(arr, rows[i].j);
                if (rows[i].text)
                        fputs(rows[i].text, stdout);
                free(rows[i].text);
        }
        free(rows);
        if (o.json) {
                json_print(arr);
                json_object_put(arr);
        }
        vs_guest_names_free(names, n);
        return rc;
}

/* ---- ps ------------------------------------------------------------------ */

typedef struct GuestMap {
        char base_rel[1024]; /* the cgroup parent as /proc/PID/cgroup shows it */
        char prefix[128];
        char **names;
        unsigned *ctx;
        int n;
} GuestMap;

static int map_init(GuestMap *m, const Host *h, VsError *err)
{
        char abs[1024];
        int r = vs_cgroup_base(h->cgroup_parent, abs, sizeof abs, m->base_rel, sizeof m->base_rel,
                               m->prefix, sizeof m->prefix, err);
        if (r < 0)
                return r;
        r = vs_guest_list(&h->paths, &m->names, &m->n, err);
        if (r < 0)
                return r;
        m->ctx = calloc((size_t)m->n + 1, sizeof *m->ctx);
        for (int i = 0; i < m->n && m->ctx; i++) {
                VsGuest g;
                if (vs_guest_load(&g, &h->paths, &h->conf, h->cgroup_parent, m->names[i], NULL) ==
                    0)
                        m->ctx[i] = g.cfg.context;
        }
        return 0;
}

/* The guest @pid belongs to: its name in @name ("" for the host), its context id. */
static unsigned map_pid(const GuestMap *m, pid_t pid, char *name, size_t size)
{
        char path[64], buf[4096];
        name[0] = '\0';
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
        if (vs_read_file_at(AT_FDCWD, path, buf, sizeof buf) < 0)
                return 0;
        size_t pl = strlen(m->prefix), bl = strlen(m->base_rel);
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                if (strncmp(l, m->prefix, pl) != 0)
                        continue;
                const char *cg = l + pl;
                if (strncmp(cg, m->base_rel, bl) != 0 || cg[bl] != '/')
                        return 0;
                cg += bl + 1;
                size_t nl = strcspn(cg, "/");
                snprintf(name, size, "%.*s", (int)nl, cg);
                for (int i = 0; i < m->n; i++)
                        if (streq(m->names[i], name))
                                return m->ctx ? m->ctx[i] : 0;
                return 0;
        }
        return 0;
}

static void map_free(GuestMap *m)
{
        vs_guest_names_free(m->names, m->n);
        free(m->ctx);
}

static int ps_json(const GuestMap *m)
{
        json_object *arr = json_object_new_array();
        DIR *d = opendir("/proc");
        if (!d)
                return fail(EXIT_FAILURE, "ps", "open /proc: %m");
        struct dirent *de;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                VsProcStat ps;
                if (vs_proc_stat((pid_t)pid, &ps) < 0)
                        continue;
                char name[64], path[64], cmd[4096];
                unsigned ctx = map_pid(m, (pid_t)pid, name, sizeof name);
                snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
                ssize_t n = vs_read_file_at(AT_FDCWD, path, cmd, sizeof cmd);
                for (ssize_t i = 0; i < n - 1; i++)
                        if (cmd[i] == '\0')
                                cmd[i] = ' ';
                if (n <= 0) {
                        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
                        n = vs_read_file_at(AT_FDCWD, path, cmd + 1, sizeof cmd - 2);
                        cmd[0] = '[';
                        size_t l = strcspn(cmd, "\n");
                        snprintf(cmd + l, sizeof cmd - l, "]");
                }
                json_object *j = json_object_new_object();
                json_object_object_add(j, "pid", json_object_new_int((int)pid));
                json_object_object_add(j, "ppid", json_object_new_int(ps.ppid));
                json_object_object_add(j, "context", json_object_new_int((int)ctx));
                json_object_object_add(j, "guest", name[0] ? json_object_new_string(name) : NULL);
                json_object_object_add(j, "command", json_object_new_string(cmd));
                json_object_array_add(arr, j);
        }
        closedir(d);
        json_print(arr);
        json_object_put(arr);
        return 0;
}

static int verb_ps(int argc, char **argv)
{
        static const char verb[] = "ps";
        Host h;
        GuestMap m = {0};
        VsError err = {0};
        const char *root_dir = NULL;
        bool json = false;
        /* our own options come first; everything else is ps's */
        int i = 1;
        for (; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        json = true;
                else if (streq(argv[i], "--root-dir") && i + 1 < argc)
                        root_dir = argv[++i];
                else if (streq(argv[i], "--help")) {
                        printf("Usage: %s ps %s\n\n%s", vs_program, verb_ps_def.synopsis,
                               verb_ps_def.usage);
                        return 0;
                } else
                        break;
        }
        if (host_load(&h, root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (map_init(&m, &h, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        if (json) {
                int rc = ps_json(&m);
                map_free(&m);
                return rc;
        }

        char *psargv[64];
        int k = 0;
        static char ps[] = "ps", ef[] = "-ef";
        psargv[k++] = ps;
        if (i >= argc)
                psargv[k++] = ef;
        for (; i < argc && k < 63; i++)
                psargv[k++] = argv[i];
        psargv[k] = NULL;
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return fail(EXIT_FAILURE, verb, "pipe: %m");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        pid_t pid;
        int e = posix_spawnp(&pid, "ps", &fa, NULL, psargv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);
        if (e != 0) {
                close(pipefd[0]);
                map_free(&m);
                return fail(EXIT_FAILURE, verb, "run ps: %s (install procps)", strerror(e));
        }
        FILE *f = fdopen(pipefd[0], "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long pid_end = -1;
        while ((len = getline(&line, &cap, f)) > 0) {
                if (line[len - 1] == '\n')
                        line[--len] = '\0';
                if (pid_end < 0) {
                        /* the header: CONTEXT goes right after the PID column */
                        char *p = line;
                        while ((p = strstr(p, "PID"))) {
                                bool start = p == line || p[-1] == ' ';
                                bool stop = p[3] == ' ' || p[3] == '\0';
                                if (start && stop)
                                        break;
                                p += 3;
                        }
                        if (!p) {
                                printf("%s\n", line);
                                pid_end = 0;
                                continue;
                        }
                        pid_end = p + 3 - line;
                        printf("%.*s %-16s%s\n", (int)pid_end, line, "CONTEXT", line + pid_end);
                        continue;
                }
                if (pid_end == 0 || len < pid_end) {
                        printf("%s\n", line);
                        continue;
                }
                /* the PID is right-aligned and ends at pid_end */
                long s = pid_end;
                while (s > 0 && line[s - 1] >= '0' && line[s - 1] <= '9')
                        s--;
                char name[64], col[96];
                unsigned ctx = map_pid(&m, (pid_t)strtol(line + s, NULL, 10), name, sizeof name);
                if (name[0])
                        snprintf(col, sizeof col, "%u %s", ctx, name);
                else
                        snprintf(col, sizeof col, "0 MAIN");
                printf("%.*s %-16s%s\n", (int)pid_end, line, col, line + pid_end);
        }
        free(line);
        fclose(f);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        map_free(&m);
        if (pid_end == 0)
                return fail(EXIT_FAILURE, verb, "the ps output has no PID column");
        return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE;
}

/* ---- kill ---------------------------------------------------------------- */

static int verb_kill(int argc, char **argv)
{
        static const char verb[] = "kill";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int code;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR, verb_kill_def.synopsis,
                           verb_kill_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        int nargs = argc - o.optind;
        if (nargs < 2 || nargs > 3)
                return fail(EXIT_USAGE, verb, "say %s kill NAME PID [SIGNAL]", vs_program);
        unsigned long long want;
        if (vs_parse_u64(argv[o.optind + 1], &want) < 0 || want < 1 || want > 4194304)
                return fail(EXIT_USAGE, verb, "\"%s\" is not a process id", argv[o.optind + 1]);
        int sig = SIGTERM;
        if (nargs == 3 && (sig = vs_signal_from_name(argv[o.optind + 2])) < 0)
                return fail(EXIT_USAGE, verb, "\"%s\" is not a signal (say TERM, KILL, HUP or 9)",
                            argv[o.optind + 2]);
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (guest_load(&g, &h, argv[o.optind], verb, &code) < 0)
                return code;
        VsGuestState st;
        if (vs_guest_state(&g, &st, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        if (!st.init) {
                vs_guest_state_release(&st);
                return fail(EXIT_FAILURE, verb, "%s is not running", g.cfg.name);
        }
        pid_t host;
        int fd;
        r = vs_guest_find(&st, (long)want, &host, &fd, NULL);
        vs_guest_state_release(&st);
        if (r < 0)
                return fail(EXIT_FAILURE, verb, "%s has no process %llu", g.cfg.name, want);
        r = pidfd_send_signal(fd, sig, NULL, 0);
        close(fd);
        if (r < 0)
                return fail(EXIT_FAILURE, verb, "signal %llu in %s: %m", want, g.cfg.name);
        return 0;
}

const Verb verb_list_def = {
    .name = "list",
    .run = verb_list,
    .synopsis = "[--all] [--json]",
    .summary = "running guests with their processes, memory and CPU time (vserver-stat)",
    .usage = "  --all            stopped guests too\n"
             "  --json           machine-readable\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
const Verb verb_ps_def = {
    .name = "ps",
    .run = verb_ps,
    .synopsis = "[--json] [PS OPTIONS]",
    .summary = "every process on the host, with a CONTEXT column naming its guest (vps)",
    .usage = "  --json           machine-readable, without ps\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n"
             "\nOther options go to ps(1) (default -ef); the CONTEXT column follows PID.\n"
             "Host processes show \"0 MAIN\".\n",
};
const Verb verb_kill_def = {
    .name = "kill",
    .run = verb_kill,
    .synopsis = "NAME PID [SIGNAL]",
    .summary = "signal a guest's process by its pid inside the guest (vkill)",
    .usage = "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n"
             "\nSIGNAL is a name (TERM, SIGHUP, RTMIN+3) or a number; default TERM.\n",
};
