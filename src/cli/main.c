/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../lib/cgroup.h"
#include "../lib/keys.h"
#include "../lib/parse.h"
#include "../lib/selfexe.h"
#include "../lib/util.h"
#include "../lib/viewd.h"
#include "cli.h"

#ifndef VS_VERSION
#define VS_VERSION "0.0.0"
#endif

const char *vs_program = "vserver";

static const Verb *const verbs[] = {
    &verb_build_def,   &verb_start_def,   &verb_stop_def,   &verb_restart_def, &verb_status_def,
    &verb_running_def, &verb_enter_def,   &verb_exec_def,   &verb_list_def,    &verb_ps_def,
    &verb_kill_def,    &verb_config_def,  &verb_delete_def, &verb_set_def,     &verb_limits_def,
    &verb_stats_def,   &verb_suspend_def, &verb_resume_def, &verb_run_def,     &verb_unify_def,
    &verb_deunify_def, &verb_host_def,
};

/* Length of the valid UTF-8 sequence at @s (2-4), or 0. */
static int utf8_len(const unsigned char *s)
{
        int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
        for (int i = 1; i < n; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        return s[0] >= 0xf8 ? 0 : n;
}

/*
 * Messages quote what users, guest files and guests wrote: control bytes
 * and broken UTF-8 are printed escaped (\xNN), never sent to the terminal.
 */
static void put_escaped(const char *s, FILE *f)
{
        for (const unsigned char *p = (const unsigned char *)s; *p;) {
                int n = *p >= 0x80 ? utf8_len(p) : 0;
                if (n) {
                        fwrite(p, 1, (size_t)n, f);
                        p += n;
                } else if (*p < 0x20 || *p == 0x7f || *p >= 0x80) {
                        fprintf(f, "\\x%02x", *p++);
                } else {
                        fputc(*p++, f);
                }
        }
}

int fail(int code, const char *verb, const char *fmt, ...)
{
        va_list ap;
        char msg[4096];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        /* one write: the lines of start --all's workers, one process per CPU, interleaved
         * byte by byte on a shared stderr (it is unbuffered) */
        char *line = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&line, &len);
        FILE *f = m ? m : stderr;
        fprintf(f, "%s: ", vs_program);
        if (verb)
                fprintf(f, "%s: ", verb);
        put_escaped(msg, f);
        fputc('\n', f);
        if (m && fclose(m) == 0) {
                fflush(stderr);
                (void)vs_write_all(STDERR_FILENO, line, len);
        }
        free(line);
        return code;
}

int fail_error(int code, const char *verb, const VsError *e)
{
        char buf[VS_ERROR_MSG_MAX + 128];
        return fail(code, verb, "%s", vs_error_text(e, buf, sizeof buf));
}

static const Verb *find_verb(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
                if (streq(verbs[i]->name, name))
                        return verbs[i];
        return NULL;
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: %s COMMAND [OPTIONS] [ARGS]\n\n"
                "Isolated Linux guests (security contexts) on one mainline kernel.\n\n"
                "Commands:\n",
                vs_program);
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
                fprintf(f, "  %-10s %s\n", verbs[i]->name, verbs[i]->summary);
        fprintf(f, "  %-10s %s\n", "help",
                "show this, the options of one command, or (help keys) the guest file's keys");
        fprintf(f, "\nOptions:\n  --version  print the version\n  --help     show this\n\n"
                   "See vserver(8).\n");
}

/* vserver help keys: every guest-file key, from the table (keys.c). */
static void help_keys(void)
{
        const char *section = "";
        for (size_t i = 0; i < vs_n_keys; i++) {
                const VsKey *k = &vs_keys[i];
                char opt[48] = "";
                if (!streq(k->section, section))
                        printf("%s[%s]\n", i ? "\n" : "", section = k->section);
                if (k->option)
                        snprintf(opt, sizeof opt, "  (build --%s)", k->option);
                printf("  %-24s %s%s%s\n", k->name, k->help,
                       k->flags & VS_KEY_MULTI ? "; repeatable" : "", opt);
        }
}

static int help(int argc, char **argv)
{
        if (argc < 2) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "keys")) {
                help_keys();
                return 0;
        }
        const Verb *v = find_verb(argv[1]);
        if (!v)
                return fail(EXIT_USAGE, "help", "unknown command \"%s\" (see %s help)", argv[1],
                            vs_program);
        printf("Usage: %s %s %s\n\n%s.\n\n%s", vs_program, v->name, v->synopsis, v->summary,
               v->usage_fn ? v->usage_fn() : v->usage);
        return 0;
}

/*
 * The migration primer's first child (vs_cgroup_prime_migration), named
 * across the sealed re-exec so that we reap it there and the parent need
 * not wait for it to be scheduled before it re-execs.
 */
#define PRIMER_ENV "VSERVER_PRIMER_PID"

static void reap_primer(void)
{
        const char *v = getenv(PRIMER_ENV);
        unsigned long long pid = 0;
        bool named = v && vs_parse_u64(v, &pid) == 0 && pid > 0 && pid <= INT_MAX;
        unsetenv(PRIMER_ENV); /* nothing after us sees it */
        if (named)            /* not a child of ours: ECHILD at once */
                while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
                        ;
}

int main(int argc, char **argv)
{
        reap_primer();
        const char *base = argv[0] ? strrchr(argv[0], '/') : NULL;
        base = base ? base + 1 : argv[0] ? argv[0] : "";
        if (strncmp(base, "vserver-runc", 12) == 0)
                return runc_main(argc, argv);
        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *cmd = argv[1];
        if (streq(cmd, "--version") || streq(cmd, "version")) {
                printf("vserver %s\n", VS_VERSION);
                return 0;
        }
        if (streq(cmd, "--help") || streq(cmd, "-h") || streq(cmd, "help"))
                return help(argc - 1, argv + 1);
        /* --root-dir DIR before the command applies to it */
        if (streq(cmd, "--root-dir") || strncmp(cmd, "--root-dir=", 11) == 0) {
                const char *dir = cmd[10] == '=' ? cmd + 11 : (argc > 2 ? argv[2] : NULL);
                if (!dir)
                        return fail(EXIT_USAGE, NULL, "--root-dir needs a value");
                setenv("VSERVER_ROOT", dir, 1);
                int shift = cmd[10] == '=' ? 1 : 2;
                argv[shift] = argv[0];
                return main(argc - shift, argv + shift);
        }
        if (streq(cmd, VS_VIEWD_VERB)) { /* the view server, started by vserver start */
                VsError err = {0};
                return vs_viewd_run(&err) < 0 ? fail_error(EXIT_FAILURE, cmd, &err) : 0;
        }
        const Verb *v = find_verb(cmd);
        /* util-vserver's word order: vserver NAME start|stop|enter|exec|status ... */
        if (!v && argc >= 3 && cmd[0] != '-' && (v = find_verb(argv[2])) &&
            !streq(v->name, "run") && !streq(v->name, "list") && !streq(v->name, "ps") &&
            !streq(v->name, "build")) {
                char *name = argv[1]; /* NAME becomes the verb's first operand */
                argv[1] = argv[2];
                argv[2] = name;
        }
        if (!v)
                return fail(EXIT_USAGE, NULL, "unknown command \"%s\" (see %s help)", cmd,
                            vs_program);
        if (v->enters) {
                VsError err = {0};
                extern char **environ;
                /* its wait runs while we re-exec; the sealed copy reaps the child it names */
                pid_t primer = vs_selfexe_sealed() ? 0 : vs_cgroup_prime_migration();
                if (primer > 0) {
                        char pid[16];
                        snprintf(pid, sizeof pid, "%d", (int)primer);
                        setenv(PRIMER_ENV, pid, 1);
                }
                if (vs_selfexe_reexec_sealed(argv, environ, &err) < 0) {
                        reap_primer();
                        return fail_error(EXIT_FAILURE, v->name, &err);
                }
                reap_primer(); /* sealed already: no re-exec */
        }
        return v->run(argc - 1, argv + 1);
}
