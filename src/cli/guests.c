/* SPDX-License-Identifier: GPL-2.0-or-later */
/* start, stop, restart, status, delete, config: a guest's life cycle. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/tree.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

static int do_start(const Host *h, const char *name, const char *verb)
{
        VsGuest g;
        VsError err = {0};
        int code;
        if (guest_load(&g, h, name, verb, &code) < 0)
                return code;
        _cleanup_close_ int lock = -EBADF;
        if (guest_lock(&g, verb, &lock) < 0)
                return EXIT_FAILURE;
        if (vs_guest_start(&g, &err) < 0) {
                if (!err.input && err.code != EBUSY)
                        vs_error_prefix(&err, "%s", name);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        char notes[2048];
        if (vs_guest_net_notes(&g, notes, sizeof notes) > 0)
                for (char *line = strtok(notes, "\n"); line; line = strtok(NULL, "\n"))
                        fprintf(stderr, "%s: %s: note: %s %s\n", vs_program, verb, name, line);
        return 0;
}

static int do_stop(const Host *h, const char *name, long timeout, const char *verb, bool quiet)
{
        VsGuest g;
        VsError err = {0};
        /* what it was started with: its file may have changed, or broken, since */
        int loaded = vs_guest_load_started(&g, &h->paths, &h->conf, h->cgroup_parent, name, &err);
        if (loaded < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        _cleanup_close_ int lock = -EBADF;
        if (guest_lock(&g, verb, &lock) < 0)
                return EXIT_FAILURE;
        VsGuestState st;
        if (vs_guest_state(&g, &st, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        bool was_running = st.running;
        vs_guest_state_release(&st);
        bool forced = false;
        if (vs_guest_stop(&g, timeout >= 0 ? (unsigned)timeout : g.cfg.stop_timeout, &forced,
                          &err) < 0) {
                vs_error_prefix(&err, "%s", name);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        if (!was_running && !quiet)
                fprintf(stderr, "%s: %s: %s was not running\n", vs_program, verb, name);
        else if (forced)
                fprintf(stderr, "%s: %s: %s: init did not end within %lds; killed every process\n",
                        vs_program, verb, name, timeout >= 0 ? timeout : (long)g.cfg.stop_timeout);
        return 0;
}

typedef int (*GuestFn)(const Host *, const char *, long, const char *);

enum { MAX_WORKERS = 32 };

/* Starts work: a process per CPU.  Stops wait for inits: many at once. */
static int cpu_workers(void)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return (int)(cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : cpus);
}

/*
 * @fn on each of @names: the first here (it may start the console keeper
 * and the view server the others then share), the rest from up to @w
 * processes, each taking every W-th name.  Nonzero if any failed.
 */
static int run_all(const Host *h, char *const *names, int n, const char *verb, GuestFn fn, long arg,
                   int w)
{
        if (n == 0)
                return 0;
        int rc = fn(h, names[0], arg, verb) != 0 ? EXIT_FAILURE : 0;
        if (w > n - 1)
                w = n - 1;
        if (w > MAX_WORKERS)
                w = MAX_WORKERS;
        if (w < 1)
                w = 1;
        pid_t pids[MAX_WORKERS];
        int started = 0;
        fflush(stdout);
        fflush(stderr);
        for (; w > 1 && started < w; started++) {
                pids[started] = fork();
                if (pids[started] < 0)
                        break;
                if (pids[started] == 0) {
                        int c = 0;
                        for (int i = 1 + started; i < n; i += w)
                                c |= fn(h, names[i], arg, verb) != 0;
                        fflush(stdout);
                        fflush(stderr);
                        _exit(c ? EXIT_FAILURE : 0);
                }
        }
        /* the shares no worker took (one CPU, or a fork failed): here */
        for (int k = started; k < w; k++)
                for (int i = 1 + k; i < n; i += w)
                        if (fn(h, names[i], arg, verb) != 0)
                                rc = EXIT_FAILURE;
        for (int i = 0; i < started; i++) {
                int status;
                while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
                        ;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        rc = EXIT_FAILURE;
        }
        return rc;
}

/* Each guest (or each marked autostart), in name order, several at a time. */
static int for_each_guest(const Host *h, bool autostart_only, const char *verb, GuestFn fn,
                          long arg, int workers)
{
        char **names;
        int n, rc = 0, k = 0;
        VsError err = {0};
        if (vs_guest_list(&h->paths, &names, &n, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        for (int i = 0; i < n; i++) {
                VsGuest g;
                if (autostart_only) {
                        if (vs_guest_load(&g, &h->paths, &h->conf, h->cgroup_parent, names[i],
                                          &err) < 0) {
                                fail_error(0, verb, &err);
                                rc = EXIT_FAILURE;
                                continue;
                        }
                        if (!g.cfg.autostart)
                                continue;
                }
                char *t = names[k];
                names[k++] = names[i];
                names[i] = t;
        }
        rc |= run_all(h, names, k, verb, fn, arg, workers);
        vs_guest_names_free(names, n);
        return rc;
}

static int start_one(const Host *h, const char *name, long arg, const char *verb)
{
        (void)arg;
        /* already running is fine at boot */
        VsGuest g;
        VsGuestState st;
        if (vs_guest_load(&g, &h->paths, &h->conf, h->cgroup_parent, name, NULL) == 0 &&
            vs_guest_state(&g, &st, NULL) == 0) {
                bool running = st.running;
                vs_guest_state_release(&st);
                if (running)
                        return 0;
        }
        return do_start(h, name, verb);
}

static int stop_one(const Host *h, const char *name, long timeout, const char *verb)
{
        return do_stop(h, name, timeout, verb, true);
}

static int start_named(const Host *h, const char *name, long arg, const char *verb)
{
        (void)arg;
        return do_start(h, name, verb);
}

static int stop_named(const Host *h, const char *name, long timeout, const char *verb)
{
        return do_stop(h, name, timeout, verb, false);
}

static int verb_start(int argc, char **argv)
{
        static const char verb[] = "start";
        Opts o;
        Host h;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_AUTOSTART | O_ALL,
                           verb_start_def.synopsis, verb_start_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.autostart || o.all) {
                if (o.optind < argc)
                        return fail(EXIT_USAGE, verb, "--%s takes no guest name",
                                    o.all ? "all" : "autostart");
                if (o.autostart && o.all)
                        return fail(EXIT_USAGE, verb, "say --all or --autostart, not both");
                return for_each_guest(&h, o.autostart, verb, start_one, 0, cpu_workers());
        }
        if (o.optind >= argc)
                return fail(EXIT_USAGE, verb, "no guest named (say %s start NAME)", vs_program);
        return run_all(&h, argv + o.optind, argc - o.optind, verb, start_named, 0, cpu_workers());
}

static int verb_stop(int argc, char **argv)
{
        static const char verb[] = "stop";
        Opts o;
        Host h;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_TIMEOUT | O_ALL, verb_stop_def.synopsis,
                           verb_stop_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.all) {
                if (o.optind < argc)
                        return fail(EXIT_USAGE, verb, "--all takes no guest name");
                return for_each_guest(&h, false, verb, stop_one, o.timeout, MAX_WORKERS);
        }
        if (o.optind >= argc)
                return fail(EXIT_USAGE, verb, "no guest named (say %s stop NAME)", vs_program);
        return run_all(&h, argv + o.optind, argc - o.optind, verb, stop_named, o.timeout,
                       MAX_WORKERS);
}

static int verb_restart(int argc, char **argv)
{
        static const char verb[] = "restart";
        Opts o;
        Host h;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_TIMEOUT, verb_restart_def.synopsis,
                           verb_restart_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.optind != argc - 1)
                return fail(EXIT_USAGE, verb, "name one guest (say %s restart NAME)", vs_program);
        r = do_stop(&h, argv[o.optind], o.timeout, verb, true);
        return r ? r : do_start(&h, argv[o.optind], verb);
}

static long long uptime_ms(pid_t pid)
{
        unsigned long long start = vs_proc_starttime(pid);
        if (!start)
                return -1;
        struct timespec now;
        clock_gettime(CLOCK_BOOTTIME, &now);
        return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 -
               (long long)(start * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static int verb_status(int argc, char **argv)
{
        static const char verb[] = "status";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int code;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_JSON, verb_status_def.synopsis,
                           verb_status_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.optind != argc - 1)
                return fail(EXIT_USAGE, verb, "name one guest (say %s status NAME)", vs_program);
        if (guest_load(&g, &h, argv[o.optind], verb, &code) < 0)
                return code;
        VsGuestState st;
        if (vs_guest_state(&g, &st, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        long long up = st.init ? uptime_ms(st.init) : -1;
        VsIdRange ids;
        if (vs_guest_range(&g, false, &ids, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        char idbuf[64] = "";
        if (st.running && st.userns && ids.count)
                snprintf(idbuf, sizeof idbuf, ", its root is host uid %u", ids.start);
        else if (st.running && !st.userns)
                snprintf(idbuf, sizeof idbuf, ", its root is the host's root");
        if (o.json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "name", json_object_new_string(g.cfg.name));
                json_object_object_add(j, "context", json_object_new_int((int)g.cfg.context));
                json_object_object_add(j, "userns", json_object_new_boolean(g.cfg.userns));
                json_object_object_add(j, "running_userns",
                                       st.running ? json_object_new_boolean(st.userns) : NULL);
                json_object_object_add(j, "delegate", json_object_new_boolean(g.cfg.delegate));
                json_object_object_add(
                    j, "running_delegated",
                    st.running ? json_object_new_boolean(vs_cgroup_delegated(&st.cgroup)) : NULL);
                json_object *idr = NULL;
                if (ids.count) {
                        idr = json_object_new_object();
                        json_object_object_add(idr, "start", json_object_new_int64(ids.start));
                        json_object_object_add(idr, "count", json_object_new_int64(ids.count));
                }
                json_object_object_add(j, "id_range", idr);
                json_object_object_add(j, "state",
                                       json_object_new_string(st.frozen    ? "suspended"
                                                              : st.running ? "running"
                                                                           : "stopped"));
                json_object_object_add(j, "init_pid",
                                       st.init ? json_object_new_int(st.init) : NULL);
                json_object_object_add(j, "processes", json_object_new_int(st.nproc));
                json_object_object_add(j, "uptime_ms", up >= 0 ? json_object_new_int64(up) : NULL);
                json_print(j);
                json_object_put(j);
        } else if (st.running) {
                printf("%s is %s: context %u, %d process%s, PID 1 is host pid %d, up %llds%s\n",
                       g.cfg.name, st.frozen ? "suspended" : "running", g.cfg.context, st.nproc,
                       st.nproc == 1 ? "" : "es", (int)st.init, up >= 0 ? up / 1000 : 0, idbuf);
        } else {
                printf("%s is stopped\n", g.cfg.name);
        }
        bool running = st.running;
        vs_guest_state_release(&st);
        return running ? 0 : EXIT_STOPPED;
}

static int verb_delete(int argc, char **argv)
{
        static const char verb[] = "delete";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_FORCE, verb_delete_def.synopsis,
                           verb_delete_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.optind != argc - 1)
                return fail(EXIT_USAGE, verb, "name one guest (say %s delete NAME)", vs_program);
        const char *name = argv[o.optind];
        /* a broken guest file must not keep a guest from being deleted */
        if (vs_guest_init(&g, &h.paths, &h.conf, h.cgroup_parent, name, &err) < 0)
                return fail_error(EXIT_USAGE, verb, &err);
        if (vs_guest_delete(&g, o.force, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        return 0;
}

static int verb_config(int argc, char **argv)
{
        static const char verb[] = "config";
        Opts o;
        Host h;
        VsGuest g;
        int code;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR | O_JSON, verb_config_def.synopsis,
                           verb_config_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.optind != argc - 1)
                return fail(EXIT_USAGE, verb, "name one guest (say %s config NAME)", vs_program);
        if (guest_load(&g, &h, argv[o.optind], verb, &code) < 0)
                return code;
        if (!o.json) {
                vs_guest_config_write(&g.cfg, stdout);
                return 0;
        }
        /* the same keys as the file, as "section.key": value */
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem)
                return fail(EXIT_FAILURE, verb, "out of memory");
        vs_guest_config_write(&g.cfg, mem);
        fclose(mem);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "name", json_object_new_string(g.cfg.name));
        json_object_object_add(j, "file", json_object_new_string(g.conf));
        json_object_object_add(j, "rootfs", json_object_new_string(g.rootfs));
        json_object_object_add(j, "log", json_object_new_string(g.log));
        char section[32] = "";
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                if (l[0] == '#')
                        continue;
                if (l[0] == '[') {
                        snprintf(section, sizeof section, "%.*s", (int)strcspn(l + 1, "]"), l + 1);
                        continue;
                }
                char *eq = strstr(l, " = ");
                if (!eq)
                        continue;
                *eq = '\0';
                char key[128];
                snprintf(key, sizeof key, "%s.%s", section, l);
                json_object *v = json_object_new_string(eq + 3);
                json_object *prev;
                if (json_object_object_get_ex(j, key, &prev)) {
                        if (!json_object_is_type(prev, json_type_array)) {
                                json_object *arr = json_object_new_array();
                                json_object_array_add(arr, json_object_get(prev));
                                json_object_object_add(j, key, arr);
                                prev = arr;
                        }
                        json_object_array_add(prev, v);
                } else {
                        json_object_object_add(j, key, v);
                }
        }
        free(text);
        json_print(j);
        json_object_put(j);
        return 0;
}

const Verb verb_start_def = {
    .name = "start",
    .run = verb_start,
    .enters = true,
    .synopsis = "NAME... | --all | --autostart",
    .summary = "boot a guest's init as PID 1 of a new context, then return",
    .usage = "  --all            start every guest that is not running\n"
             "  --autostart      start every guest whose file says autostart = yes\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n"
             "\nThe console (init's output) goes to /var/log/vserver/NAME.log.\n",
};
const Verb verb_stop_def = {
    .name = "stop",
    .run = verb_stop,
    .synopsis = "NAME... [--timeout S] | --all",
    .summary = "the guest's stop signal to its init, a timeout, then kill what is left",
    .usage = "  --timeout S      seconds to wait for init (default: the guest's stop-timeout)\n"
             "  --all            stop every running guest\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
const Verb verb_restart_def = {
    .name = "restart",
    .run = verb_restart,
    .enters = true,
    .synopsis = "NAME [--timeout S]",
    .summary = "stop, then start a guest",
    .usage = "  --timeout S      seconds to wait for init to stop\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
/* util-vserver's "vserver NAME running": exit 0 if it runs (or is suspended), 1 if not. */
static int verb_running(int argc, char **argv)
{
        static const char verb[] = "running";
        Opts o;
        Host h;
        VsGuest g;
        VsError err = {0};
        int code;
        int r = opts_parse(argc, argv, verb, O_ROOT_DIR, verb_running_def.synopsis,
                           verb_running_def.usage, &o);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (o.optind != argc - 1)
                return fail(EXIT_USAGE, verb, "name one guest (say %s NAME running)", vs_program);
        if (guest_load(&g, &h, argv[o.optind], verb, &code) < 0)
                return code;
        VsGuestState st;
        if (vs_guest_state(&g, &st, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        bool running = st.running;
        vs_guest_state_release(&st);
        printf("%s is %s\n", g.cfg.name, running ? "running" : "stopped");
        return running ? 0 : EXIT_FAILURE;
}

const Verb verb_running_def = {
    .name = "running",
    .run = verb_running,
    .synopsis = "NAME",
    .summary = "is the guest running? exit 0 if so, 1 if not (util-vserver's test)",
    .usage = "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
const Verb verb_status_def = {
    .name = "status",
    .run = verb_status,
    .synopsis = "NAME [--json]",
    .summary = "is the guest running? exit 0 if so, 3 if stopped",
    .usage = "  --json           machine-readable\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
const Verb verb_delete_def = {
    .name = "delete",
    .run = verb_delete,
    .synopsis = "NAME [--force]",
    .summary = "remove a guest: its file, its tree and its log",
    .usage = "  --force          stop it first if it runs\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
const Verb verb_config_def = {
    .name = "config",
    .run = verb_config,
    .synopsis = "NAME [--json]",
    .summary = "print the guest's effective configuration",
    .usage = "  --json           machine-readable\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
