/* SPDX-License-Identifier: GPL-2.0-or-later */
/* set, limits, stats, suspend, resume: resource control of running guests. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../lib/limits.h"
#include "../lib/rlimit.h"
#include "../lib/stats.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

#define MAX_KEYS 64

/* Parse the options and load the one guest named; prints errors. */
static int load_one(int argc, char **argv, const char *verb, unsigned allowed, const Verb *def,
                    Opts *o, Host *h, VsGuest *g, int *code)
{
        int r = opts_parse(argc, argv, verb, allowed, def->synopsis, def->usage, o);
        if (r != 0) {
                *code = r < 0 ? EXIT_USAGE : 0;
                return -1;
        }
        if (o->optind >= argc) {
                *code = fail(EXIT_USAGE, verb, "name a guest (say %s %s NAME)", vs_program, verb);
                return -1;
        }
        if (host_load(h, o->root_dir, verb) < 0) {
                *code = EXIT_FAILURE;
                return -1;
        }
        return guest_load(g, h, argv[o->optind], verb, code);
}

/* ---- set ------------------------------------------------------------------ */

static int verb_set(int argc, char **argv)
{
        static const char verb[] = "set";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        VsGuestSet set = {0};
        char keybuf[VS_GUEST_SET_MAX][128];
        int code;

        if (load_one(argc, argv, verb, O_ROOT_DIR | O_SAVE, &verb_set_def, &o, &h, &g, &code) < 0)
                return code;
        if (o.optind + 1 >= argc)
                return fail(EXIT_USAGE, verb, "say what to set (say %s set %s limits.memory=512M)",
                            vs_program, g.cfg.name);
        for (int i = o.optind + 1; i < argc; i++) {
                const char *eq = strchr(argv[i], '=');
                int n = set.n;
                if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof keybuf[0])
                        return fail(EXIT_USAGE, verb, "\"%s\": say SECTION.KEY=VALUE", argv[i]);
                if (n == VS_GUEST_SET_MAX)
                        return fail(EXIT_USAGE, verb, "too many keys at once");
                snprintf(keybuf[n], sizeof keybuf[n], "%.*s", (int)(eq - argv[i]), argv[i]);
                set.keys[n] = keybuf[n];
                set.values[n] = eq + 1;
                set.n++;
        }
        if (vs_guest_set_plan(&g, &set, &err) < 0)
                return fail_error(err.input ? EXIT_USAGE : EXIT_FAILURE, verb, &err);
        if (vs_guest_set_run(&g, &set, o.save, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        for (int i = 0; i < set.n; i++)
                if (strncmp(set.keys[i], "limits.io.write", 15) == 0) {
                        note_io_v1(verb, &g.cfg.limits);
                        break;
                }
        for (int i = 0; i < set.n; i++) {
                bool disk = strncmp(set.keys[i], "limits.disk", 11) == 0;
                bool live =
                    disk ? set.disk_live : set.running && strncmp(set.keys[i], "limits.", 7) == 0;
                printf("%s: %s = %s: %s%s%s\n", g.cfg.name, set.keys[i], set.values[i],
                       live ? "in force" : "", live && o.save ? ", " : "",
                       !o.save ? ""
                       : live  ? "saved"
                               : "saved (takes effect at the next start)");
        }
        if (set.disk_note[0])
                fprintf(stderr, "%s: %s: %s: %s\n", vs_program, verb, g.cfg.name, set.disk_note);
        return 0;
}

/* ---- limits ----------------------------------------------------------------- */

static int verb_limits(int argc, char **argv)
{
        static const char verb[] = "limits";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int code;
        if (load_one(argc, argv, verb, O_ROOT_DIR | O_JSON, &verb_limits_def, &o, &h, &g, &code) <
            0)
                return code;
        if (o.optind + 1 < argc)
                return fail(EXIT_USAGE, verb, "unexpected argument \"%s\"", argv[o.optind + 1]);
        VsGuestState st;
        if (vs_guest_state(&g, &st, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        /* "as set": what a running guest runs with, live changes included */
        (void)vs_guest_live_limits(&g, &st);

        VsCgroupMode mode = vs_cgroup_mode();
        json_object *j = o.json ? json_object_new_object() : NULL;
        json_object *arr = o.json ? json_object_new_array() : NULL;
        if (o.json) {
                json_object_object_add(j, "name", json_object_new_string(g.cfg.name));
                json_object_object_add(j, "running", json_object_new_boolean(st.running));
                json_object_object_add(j, "cgroup",
                                       json_object_new_string(vs_cgroup_mode_name(mode)));
        } else {
                printf("%s: %s, cgroup %s\n", g.cfg.name, st.running ? "running" : "stopped",
                       vs_cgroup_mode_name(mode));
                printf("%-22s %-14s %-4s %-34s %s\n", "KEY", "SET", "API", "KERNEL FILE",
                       "IN FORCE");
        }
        VsLimitReport rep;
        if (vs_guest_limits(&g, &st, &rep, &err) < 0) {
                vs_guest_state_release(&st);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        if (rep.has_problem)
                fail_error(0, verb, &rep.problem);
        for (int i = 0; i < rep.n; i++) {
                const VsLimitRow *row = &rep.rows[i];
                const char *now = row->has_now ? row->now : "-";
                if (!o.json) {
                        printf("%-22s %-14s %-4s %-34s %s\n", row->key, row->value, row->api,
                               row->file, now);
                        continue;
                }
                json_object *e = json_object_new_object();
                json_object_object_add(e, "key", json_object_new_string(row->key));
                json_object_object_add(e, "value", json_object_new_string(row->value));
                if (row->api[0]) {
                        json_object_object_add(e, "cgroup", json_object_new_string(row->api));
                        json_object_object_add(e, "file", json_object_new_string(row->file));
                        json_object_object_add(e, "write", json_object_new_string(row->write));
                } else {
                        json_object_object_add(e, "file", json_object_new_string(row->file));
                }
                bool known = row->api[0] ? st.running : st.init != 0;
                json_object_object_add(e, "in_force", known ? json_object_new_string(now) : NULL);
                json_object_array_add(arr, e);
        }
        vs_limit_report_free(&rep);
        if (o.json) {
                json_object_object_add(j, "limits", arr);
                json_print(j);
                json_object_put(j);
        }
        vs_guest_state_release(&st);
        return 0;
}

/* ---- stats ------------------------------------------------------------------ */

static void add_u64(json_object *j, const char *key, uint64_t v)
{
        json_object_object_add(j, key,
                               v == VS_STAT_NONE ? NULL : json_object_new_int64((int64_t)v));
}

void stats_to_json(const VsStats *s, struct json_object *j)
{
        add_u64(j, "cpu_usage_us", s->cg.cpu_usage_us);
        add_u64(j, "cpu_user_us", s->cg.cpu_user_us);
        add_u64(j, "cpu_system_us", s->cg.cpu_system_us);
        add_u64(j, "cpu_periods", s->cg.cpu_periods);
        add_u64(j, "cpu_throttled_periods", s->cg.cpu_throttled_periods);
        add_u64(j, "cpu_throttled_us", s->cg.cpu_throttled_us);
        add_u64(j, "memory_bytes", s->cg.mem_current);
        add_u64(j, "memory_peak_bytes", s->cg.mem_peak);
        add_u64(j, "memory_anon_bytes", s->cg.mem_anon);
        add_u64(j, "memory_cache_bytes", s->cg.mem_cache);
        add_u64(j, "swap_bytes", s->cg.swap_current);
        add_u64(j, "oom_kills", s->cg.oom_kills);
        add_u64(j, "io_read_bytes", s->cg.io_read_bytes);
        add_u64(j, "io_write_bytes", s->cg.io_write_bytes);
        add_u64(j, "io_read_ops", s->cg.io_read_ops);
        add_u64(j, "io_write_ops", s->cg.io_write_ops);
        add_u64(j, "tasks", s->cg.tasks);
        add_u64(j, "processes", s->processes);
        add_u64(j, "threads", s->threads);
        add_u64(j, "sockets", s->sockets);
        add_u64(j, "net_rx_bytes", s->net_rx_bytes);
        add_u64(j, "net_rx_packets", s->net_rx_packets);
        add_u64(j, "net_tx_bytes", s->net_tx_bytes);
        add_u64(j, "net_tx_packets", s->net_tx_packets);
}

static uint64_t known(const VsDiskUsage *d, uint64_t v)
{
        return d->known && v != VS_UNLIMITED ? v : VS_STAT_NONE;
}

void disk_to_json(const VsDiskUsage *d, struct json_object *j)
{
        json_object_object_add(j, "disk_mechanism",
                               json_object_new_string(vs_disk_kind_name(d->kind)));
        add_u64(j, "disk_bytes", known(d, d->bytes));
        add_u64(j, "disk_limit_bytes", known(d, d->bytes_limit));
        add_u64(j, "disk_inodes", known(d, d->inodes));
        add_u64(j, "disk_inodes_limit", known(d, d->inodes_limit));
        add_u64(j, "disk_reserved_bytes",
                d->kind == VS_DISK_IMAGE ? known(d, d->reserved) : VS_STAT_NONE);
}

const char *disk_text(const VsDiskUsage *d, char *buf, size_t size)
{
        char a[32], b[32];
        if (d->kind == VS_DISK_NONE)
                snprintf(buf, size, "no limit");
        else if (!d->known)
                snprintf(buf, size, "(%s, not mounted)", vs_disk_kind_name(d->kind));
        else {
                int n = snprintf(buf, size, "%s", stats_bytes(d->bytes, a, sizeof a));
                if (d->bytes_limit != VS_UNLIMITED)
                        n += snprintf(buf + n, size - (size_t)n, " of %s",
                                      stats_bytes(d->bytes_limit, b, sizeof b));
                n += snprintf(buf + n, size - (size_t)n, ", %llu", (unsigned long long)d->inodes);
                if (d->inodes_limit != VS_UNLIMITED)
                        n += snprintf(buf + n, size - (size_t)n, " of %llu",
                                      (unsigned long long)d->inodes_limit);
                snprintf(buf + n, size - (size_t)n, " files (%s)", vs_disk_kind_name(d->kind));
        }
        return buf;
}

const char *stats_bytes(uint64_t v, char *buf, size_t size)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        if (v == VS_STAT_NONE) {
                snprintf(buf, size, "-");
                return buf;
        }
        double d = (double)v;
        int u = 0;
        while (d >= 1024 && u < 4) {
                d /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", (unsigned long long)v);
        else
                snprintf(buf, size, "%.1f %s", d, units[u]);
        return buf;
}

static const char *secs(uint64_t us, char *buf, size_t size)
{
        if (us == VS_STAT_NONE)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.2f s", (double)us / 1e6);
        return buf;
}

static const char *num(uint64_t v, char *buf, size_t size)
{
        if (v == VS_STAT_NONE)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%llu", (unsigned long long)v);
        return buf;
}

static void print_stats(const VsGuest *g, const VsStats *s, const VsDiskUsage *disk, double cpu_pct)
{
        char a[32], b[32], c[32], d[32], e[32], f[160];
        printf("%s: context %u, cgroup %s\n", g->cfg.name, g->cfg.context,
               vs_cgroup_mode_name(vs_cgroup_mode()));
        printf("cpu        %s (user %s, system %s)", secs(s->cg.cpu_usage_us, a, sizeof a),
               secs(s->cg.cpu_user_us, b, sizeof b), secs(s->cg.cpu_system_us, c, sizeof c));
        if (cpu_pct >= 0)
                printf(", %.1f%% of one CPU now", cpu_pct);
        printf("\n           throttled %s in %s of %s periods\n",
               secs(s->cg.cpu_throttled_us, a, sizeof a),
               num(s->cg.cpu_throttled_periods, b, sizeof b), num(s->cg.cpu_periods, c, sizeof c));
        printf("memory     %s (peak %s; anon %s, cache %s), swap %s, oom kills %s\n",
               stats_bytes(s->cg.mem_current, a, sizeof a),
               stats_bytes(s->cg.mem_peak, b, sizeof b), stats_bytes(s->cg.mem_anon, c, sizeof c),
               stats_bytes(s->cg.mem_cache, d, sizeof d),
               stats_bytes(s->cg.swap_current, e, sizeof e), num(s->cg.oom_kills, e + 16, 16));
        printf("tasks      %s processes, %s threads, %s sockets\n", num(s->processes, a, sizeof a),
               num(s->threads, b, sizeof b), num(s->sockets, c, sizeof c));
        printf("io         read %s in %s ops, written %s in %s ops\n",
               stats_bytes(s->cg.io_read_bytes, a, sizeof a), num(s->cg.io_read_ops, b, sizeof b),
               stats_bytes(s->cg.io_write_bytes, c, sizeof c),
               num(s->cg.io_write_ops, d, sizeof d));
        printf("net        in %s in %s packets, out %s in %s packets\n",
               stats_bytes(s->net_rx_bytes, a, sizeof a), num(s->net_rx_packets, b, sizeof b),
               stats_bytes(s->net_tx_bytes, c, sizeof c), num(s->net_tx_packets, d, sizeof d));
        printf("disk       %s\n", disk_text(disk, f, sizeof f));
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int verb_stats(int argc, char **argv)
{
        static const char verb[] = "stats";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int code;
        if (load_one(argc, argv, verb, O_ROOT_DIR | O_JSON | O_WATCH, &verb_stats_def, &o, &h, &g,
                     &code) < 0)
                return code;
        if (o.optind + 1 < argc)
                return fail(EXIT_USAGE, verb, "unexpected argument \"%s\"", argv[o.optind + 1]);
        bool tty = isatty(STDOUT_FILENO);
        uint64_t last_cpu = VS_STAT_NONE;
        double last_t = 0;
        for (;;) {
                VsGuestState st;
                VsStats s;
                if (vs_guest_state(&g, &st, &err) < 0)
                        return fail_error(EXIT_FAILURE, verb, &err);
                if (!st.running) {
                        vs_guest_state_release(&st);
                        if (o.watch && last_t > 0)
                                return 0; /* it stopped while we watched */
                        fprintf(stderr, "%s: %s: %s is not running\n", vs_program, verb,
                                g.cfg.name);
                        return EXIT_STOPPED;
                }
                int r = vs_stats_read(&st.cgroup, &s, VS_STATS_SOCKETS, &err);
                VsDiskUsage disk;
                VsDiskTree tree = vs_guest_disk_tree(&g);
                if (r == 0)
                        r = vs_disk_usage(&tree, &disk, &err);
                char bpf_dir[PATH_MAX];
                vs_paths_run(&g.paths, VS_RUN_BPF, NULL, bpf_dir, sizeof bpf_dir);
                vs_stats_net(&s, g.cfg.net, g.cfg.context, bpf_dir, vs_cgroup_v2_path(&st.cgroup));
                bool frozen = st.frozen;
                vs_guest_state_release(&st);
                if (r < 0)
                        return fail_error(EXIT_FAILURE, verb, &err);
                double t = now_s(), pct = -1;
                if (last_cpu != VS_STAT_NONE && s.cg.cpu_usage_us != VS_STAT_NONE && t > last_t)
                        pct = (double)(s.cg.cpu_usage_us - last_cpu) / 1e4 / (t - last_t);
                last_cpu = s.cg.cpu_usage_us;
                last_t = t;
                if (o.json) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "name", json_object_new_string(g.cfg.name));
                        json_object_object_add(j, "context",
                                               json_object_new_int((int)g.cfg.context));
                        json_object_object_add(
                            j, "state", json_object_new_string(frozen ? "suspended" : "running"));
                        stats_to_json(&s, j);
                        disk_to_json(&disk, j);
                        if (o.watch)
                                json_object_object_add(j, "cpu_percent",
                                                       pct >= 0 ? json_object_new_double(pct)
                                                                : NULL);
                        /* --watch: one object per line */
                        puts(json_object_to_json_string_ext(
                            j, o.watch ? JSON_C_TO_STRING_PLAIN
                                       : JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                        json_object_put(j);
                } else {
                        if (o.watch && tty)
                                fputs("\033[H\033[2J", stdout);
                        print_stats(&g, &s, &disk, pct);
                        if (frozen)
                                printf("(suspended)\n");
                        if (o.watch && !tty)
                                putchar('\n');
                }
                fflush(stdout);
                if (!o.watch)
                        return 0;
                sleep(1);
        }
}

/* ---- suspend / resume ---------------------------------------------------------- */

static int freeze_verb(int argc, char **argv, const char *verb, const Verb *def, bool suspend)
{
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int code, lockfd = -EBADF;
        if (load_one(argc, argv, verb, O_ROOT_DIR, def, &o, &h, &g, &code) < 0)
                return code;
        if (o.optind + 1 < argc)
                return fail(EXIT_USAGE, verb, "unexpected argument \"%s\"", argv[o.optind + 1]);
        if (guest_lock(&g, verb, &lockfd) < 0)
                return EXIT_FAILURE;
        VsGuestState st;
        int rc = 0;
        if (vs_guest_state(&g, &st, &err) < 0) {
                close(lockfd);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        if (!st.running)
                rc = fail(EXIT_FAILURE, verb, "%s is not running", g.cfg.name);
        else if (vs_guest_suspend(&st, suspend, &err) < 0)
                rc = fail_error(EXIT_FAILURE, verb, &err);
        vs_guest_state_release(&st);
        close(lockfd);
        return rc;
}

static int verb_suspend(int argc, char **argv)
{
        return freeze_verb(argc, argv, "suspend", &verb_suspend_def, true);
}

static int verb_resume(int argc, char **argv)
{
        return freeze_verb(argc, argv, "resume", &verb_resume_def, false);
}

const Verb verb_set_def = {
    .name = "set",
    .run = verb_set,
    .synopsis = "NAME SECTION.KEY=VALUE... [--save]",
    .summary = "change a running guest's limits at once (and its guest file with --save)",
    .usage = "  --save             write the keys into the guest file too (comments stay)\n"
             "  --root-dir DIR     the installation under DIR\n"
             "\n"
             "Keys of [limits] change a running guest at once; any key may be saved.\n"
             "Example: vserver set web1 limits.memory=512M limits.cpu.limit=1.5 --save\n",
};

const Verb verb_limits_def = {
    .name = "limits",
    .run = verb_limits,
    .synopsis = "NAME [--json]",
    .summary = "the guest's limits: as set, and as the kernel holds them",
    .usage = "  --json             machine-readable\n"
             "  --root-dir DIR     the installation under DIR\n",
};

const Verb verb_stats_def = {
    .name = "stats",
    .run = verb_stats,
    .synopsis = "NAME [--json] [--watch]",
    .summary = "what the guest uses: CPU, memory, swap, OOM kills, tasks, sockets, I/O",
    .usage = "  --json             machine-readable (with --watch: one object per line)\n"
             "  --watch            again every second, until interrupted or the guest stops\n"
             "  --root-dir DIR     the installation under DIR\n",
};

const Verb verb_suspend_def = {
    .name = "suspend",
    .run = verb_suspend,
    .synopsis = "NAME",
    .summary = "freeze every process of the guest (the cgroup freezer)",
    .usage = "  --root-dir DIR     the installation under DIR\n",
};

const Verb verb_resume_def = {
    .name = "resume",
    .run = verb_resume,
    .synopsis = "NAME",
    .summary = "thaw a suspended guest",
    .usage = "  --root-dir DIR     the installation under DIR\n",
};
