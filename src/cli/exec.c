/* SPDX-License-Identifier: GPL-2.0-or-later */
/* exec and enter: a command, or a login shell, in a running guest. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "../lib/context.h"
#include "../lib/cow.h"
#include "../lib/syscalls.h"
#include "../lib/util.h"
#include "../lib/viewd.h"
#include "cli.h"
#include "opts.h"

#define MAX_ENV 64

typedef struct ExecOpts {
        const char *root_dir;
        const char *cwd;
        bool tty;
        char *env[MAX_ENV + 1];
        int n_env;
} ExecOpts;

/* One "+" pass of getopt over argv[0..argc) (argv[0] is skipped); returns the next index. */
static int parse_pass(int argc, char **argv, const char *verb, bool allow_exec_opts, ExecOpts *o,
                      int *ret_next)
{
        static const struct option longopts[] = {
            {"root-dir", required_argument, NULL, 'R'}, {"tty", no_argument, NULL, 't'},
            {"cwd", required_argument, NULL, 'C'},      {"env", required_argument, NULL, 'e'},
            {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
        };
        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:te:", longopts, NULL)) != -1) {
                if (!allow_exec_opts && c != 'R' && c != 'h' && c != ':' && c != '?') {
                        opts_other('?', argv, verb, "", "");
                        return -1;
                }
                switch (c) {
                case 'R':
                        o->root_dir = optarg;
                        break;
                case 't':
                        o->tty = true;
                        break;
                case 'C':
                        if (optarg[0] != '/') {
                                fail(EXIT_USAGE, verb, "--cwd \"%s\" must be absolute", optarg);
                                return -1;
                        }
                        o->cwd = optarg;
                        break;
                case 'e':
                        if (!strchr(optarg, '=') || optarg[0] == '=') {
                                fail(EXIT_USAGE, verb, "--env \"%s\": say NAME=VALUE", optarg);
                                return -1;
                        }
                        if (o->n_env >= MAX_ENV - 8) {
                                fail(EXIT_USAGE, verb, "too many --env");
                                return -1;
                        }
                        o->env[o->n_env++] = optarg;
                        break;
                case 'h':
                        return 1;
                default:
                        opts_other(c, argv, verb, "", "");
                        return -1;
                }
        }
        *ret_next = optind;
        return 0;
}

static bool term_ok(const char *t)
{
        if (!t || !*t || strlen(t) > 64)
                return false;
        for (; *t; t++)
                if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
                      (*t >= '0' && *t <= '9') || *t == '-' || *t == '.' || *t == '_' || *t == '+'))
                        return false;
        return true;
}

/*
 * The guest's root as it sees it: a unified guest's files are its rootfs
 * over its base and the store, which only its running init's root shows.
 */
static int guest_root(const VsGuest *g)
{
        if (!vs_cow_enabled(g->dir))
                return open(g->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        VsGuestState st;
        VsError err = {0};
        if (vs_guest_state(g, &st, &err) < 0)
                return -1;
        int fd = -1;
        if (st.init_pidfd >= 0) {
                char p[64];
                snprintf(p, sizeof p, "/proc/%d/root", st.init);
                fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
                /* still that init, not a process that took its number */
                if (fd >= 0 && pidfd_send_signal(st.init_pidfd, 0, NULL, 0) < 0) {
                        close(fd);
                        fd = -1;
                }
        }
        vs_guest_state_release(&st);
        return fd;
}

/* root's login shell from the guest's /etc/passwd, read inside the guest root. */
static void login_shell(const VsGuest *g, char *buf, size_t size)
{
        char passwd[65536];
        snprintf(buf, size, "/bin/sh");
        _cleanup_close_ int root = guest_root(g);
        if (root < 0)
                return;
        _cleanup_close_ int fd = vs_openat2(root, "etc/passwd", O_RDONLY | O_CLOEXEC | O_NOCTTY,
                                            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        if (fd < 0)
                return;
        ssize_t n = vs_read_all(fd, passwd, sizeof passwd - 1);
        if (n <= 0)
                return;
        passwd[n] = '\0';
        (void)vs_passwd_root_shell(passwd, buf, size);
}

static int join_and_wait(const VsGuest *g, char **argv, ExecOpts *o, bool login, const char *verb)
{
        VsError err = {0};
        VsGuestState st;
        if (vs_guest_state(g, &st, &err) < 0)
                return fail_error(EXIT_FAILURE, verb, &err);
        if (st.init_pidfd < 0) {
                vs_guest_state_release(&st);
                return fail(EXIT_FAILURE, verb, "%s is not running (say %s start %s)", g->cfg.name,
                            vs_program, g->cfg.name);
        }
        if (st.frozen) {
                vs_guest_state_release(&st);
                return fail(EXIT_FAILURE, verb, "%s is suspended (say %s resume %s)", g->cfg.name,
                            vs_program, g->cfg.name);
        }
        /* its file's capabilities are those of the mode it runs in, or of none */
        if (st.userns != g->cfg.userns) {
                vs_guest_state_release(&st);
                return fail(EXIT_FAILURE, verb,
                            "%s runs %s a user namespace of its own, but its file now says "
                            "userns = %s (say %s restart %s)",
                            g->cfg.name, st.userns ? "in" : "without", g->cfg.userns ? "yes" : "no",
                            vs_program, g->cfg.name);
        }

        /* the environment: ours is not the guest's business, except the terminal type */
        char *env[MAX_ENV + 1];
        int n = 0;
        for (char *const *e = vs_context_env; *e; e++)
                env[n++] = *e;
        static char term[80], shellvar[300];
        const char *t = getenv("TERM");
        if (o->tty) {
                snprintf(term, sizeof term, "TERM=%s", term_ok(t) ? t : "xterm");
                env[n++] = term;
        }
        if (login) {
                static char user[] = "USER=root", logname[] = "LOGNAME=root";
                env[n++] = user;
                env[n++] = logname;
                snprintf(shellvar, sizeof shellvar, "SHELL=%s", argv[0]);
                env[n++] = shellvar;
        }
        for (int i = 0; i < o->n_env; i++)
                env[n++] = o->env[i];
        env[n] = NULL;

        char arg0[300];
        char *largv[2];
        if (login) {
                const char *base = strrchr(argv[0], '/');
                snprintf(arg0, sizeof arg0, "-%s", base ? base + 1 : argv[0]);
                largv[0] = arg0;
                largv[1] = NULL;
        }

        VsJoinSpec spec = {
            .name = g->cfg.name,
            .pidfd = st.init_pidfd,
            .argv = login ? largv : argv,
            .envp = env,
            .cwd = o->cwd ? o->cwd : (login ? "/root" : "/"),
            .caps = vs_guest_caps(&g->cfg),
            .no_new_privs = g->cfg.no_new_privs,
            .seccomp = {.mode = g->cfg.seccomp,
                        .file = g->cfg.seccomp_file,
                        .allow_userns = g->cfg.allow_userns,
                        .userns = g->cfg.userns},
            .rlimits = g->cfg.rlimits,
            .n_rlimits = g->cfg.n_rlimits,
            .tty = o->tty,
        };
        GuestStdio io;
        if (stdio_pipes(&io, o->tty, verb) < 0) {
                vs_guest_state_release(&st);
                return EXIT_FAILURE;
        }
        memcpy(spec.stdio, io.guest, sizeof spec.stdio);
        /* a login shell starts in root's home; if the guest has none, in / */
        spec.cwd_or_root = login && !o->cwd;
        if (login)
                spec.path = argv[0]; /* the shell, run as "-sh" */
        /* its uname and sysinfo are answered by the view server (started if none runs) */
        int gate = -EBADF;
        spec.notify = vs_guest_notify(&g->cfg);
        /* its CPUs as its limits are now (vserver set changes them live) */
        cpu_set_t cpus;
        VsGuest *live = malloc(sizeof *live);
        if (live) {
                *live = *g;
                (void)vs_guest_live_limits(live, &st);
                if (vs_guest_affinity(&live->cfg, &cpus))
                        spec.affinity = &cpus;
                free(live);
        }
        if (spec.notify && vs_views_ensure(&gate, &err) < 0) {
                vs_guest_state_release(&st);
                stdio_close(&io);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        VsContext ctx;
        int r = vs_context_join(&spec, &ctx, &err);
        vs_guest_state_release(&st);
        if (r == 0 && ctx.notify >= 0) {
                r = vs_views_give(g->cfg.context, ctx.notify, &err);
                if (r < 0) { /* without it, the command's uname and sysinfo would hang: stop it */
                        (void)pidfd_send_signal(ctx.pidfd, SIGKILL, NULL, 0);
                        vs_context_release(&ctx);
                }
        }
        if (gate >= 0)
                close(gate);
        if (r < 0) {
                stdio_close(&io);
                if (!err.input)
                        vs_error_prefix(&err, "%s", g->cfg.name);
                return fail_error(EXIT_FAILURE, verb, &err);
        }
        int code = attend(&ctx, &io, o->tty, verb);
        vs_context_release(&ctx);
        return code;
}

static int verb_exec(int argc, char **argv)
{
        static const char verb[] = "exec";
        ExecOpts o = {0};
        Host h;
        VsGuest g;
        int code, next;
        int r = parse_pass(argc, argv, verb, true, &o, &next);
        if (r != 0)
                goto help_or_usage;
        if (next >= argc)
                return fail(EXIT_USAGE, verb, "no guest named (say %s exec NAME -- CMD...)",
                            vs_program);
        int name_at = next;
        /* options after the name, up to the command */
        int next2;
        r = parse_pass(argc - name_at, argv + name_at, verb, true, &o, &next2);
        if (r != 0)
                goto help_or_usage;
        int cmd = name_at + next2;
        if (cmd < argc && streq(argv[cmd], "--"))
                cmd++;
        if (cmd >= argc)
                return fail(EXIT_USAGE, verb, "no command given (say %s exec %s -- CMD...)",
                            vs_program, argv[name_at]);
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (guest_load(&g, &h, argv[name_at], verb, &code) < 0)
                return code;
        return join_and_wait(&g, argv + cmd, &o, false, verb);
help_or_usage:
        if (r > 0) {
                printf("Usage: %s exec %s\n\n%s", vs_program, verb_exec_def.synopsis,
                       verb_exec_def.usage);
                return 0;
        }
        return EXIT_USAGE;
}

static int verb_enter(int argc, char **argv)
{
        static const char verb[] = "enter";
        ExecOpts o = {0};
        Host h;
        VsGuest g;
        int code, next;
        int r = parse_pass(argc, argv, verb, false, &o, &next);
        if (r == 0 && next < argc) {
                int next2;
                r = parse_pass(argc - next, argv + next, verb, false, &o, &next2);
                if (r == 0 && next + next2 != argc)
                        return fail(EXIT_USAGE, verb, "name one guest (say %s enter NAME)",
                                    vs_program);
        }
        if (r > 0) {
                printf("Usage: %s enter %s\n\n%s", vs_program, verb_enter_def.synopsis,
                       verb_enter_def.usage);
                return 0;
        }
        if (r < 0)
                return EXIT_USAGE;
        if (next >= argc)
                return fail(EXIT_USAGE, verb, "no guest named (say %s enter NAME)", vs_program);
        if (!isatty(STDIN_FILENO))
                return fail(EXIT_USAGE, verb,
                            "needs a terminal on stdin (for a command without one, say %s exec "
                            "NAME -- CMD)",
                            vs_program);
        if (host_load(&h, o.root_dir, verb) < 0)
                return EXIT_FAILURE;
        if (guest_load(&g, &h, argv[next], verb, &code) < 0)
                return code;
        char shell[256];
        login_shell(&g, shell, sizeof shell);
        char *sargv[] = {shell, NULL};
        o.tty = true;
        return join_and_wait(&g, sargv, &o, true, verb);
}

const Verb verb_exec_def = {
    .name = "exec",
    .run = verb_exec,
    .enters = true,
    .synopsis = "NAME [-t] [--cwd DIR] [--env N=V] [--] CMD [ARG...]",
    .summary = "run a command in a running guest; its exit code is ours",
    .usage = "  -t, --tty        a pty from the guest's devpts (job control, curses)\n"
             "  --cwd DIR        working directory in the guest (default /)\n"
             "  --env NAME=VALUE add to the environment (PATH, HOME, container=vserver)\n"
             "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n"
             "\nThe command joins the guest's namespaces and cgroup and gets its\n"
             "capabilities, seccomp filter and limits.\n",
};
const Verb verb_enter_def = {
    .name = "enter",
    .run = verb_enter,
    .enters = true,
    .synopsis = "NAME",
    .summary = "a login shell in a running guest, on a pty",
    .usage = "  --root-dir DIR   the installation under DIR (default $VSERVER_ROOT or /)\n",
};
