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

#include "../lib/build.h"
#include "../lib/keys.h"
#include "../lib/tree.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

static void note(void *data, const char *msg)
{
        (void)data;
        fprintf(stderr, "%s: build: %s\n", vs_program, msg);
}

static void on_signal(int sig)
{
        (void)sig;
        vs_tree_interrupted = 1;
}

enum {
        OPT_TEMPLATE = 256,
        OPT_AUTOSTART,
        OPT_SUITE,
        OPT_MIRROR,
        OPT_DEBIAN_INIT,
        OPT_SET,
        OPT_ROOT_DIR,
        OPT_USERNS,
        OPT_NO_USERNS,
        OPT_KEY = 1000, /* + the index of a guest-file key with a build option (keys.c) */
};

static const struct option fixed_options[] = {
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"autostart", no_argument, NULL, OPT_AUTOSTART},
    {"suite", required_argument, NULL, OPT_SUITE},
    {"mirror", required_argument, NULL, OPT_MIRROR},
    {"debian-init", required_argument, NULL, OPT_DEBIAN_INIT},
    {"set", required_argument, NULL, OPT_SET},
    {"root-dir", required_argument, NULL, OPT_ROOT_DIR},
    {"userns", no_argument, NULL, OPT_USERNS},
    {"no-userns", no_argument, NULL, OPT_NO_USERNS},
    {"help", no_argument, NULL, OPTS_HELP},
};

#define MAX_KEYS 128
static struct option options[ARRAY_SIZE(fixed_options) + MAX_KEYS + 1];
static char key_name[MAX_KEYS][96], key_where[MAX_KEYS][40];

/* The fixed options, then --OPTION for each guest-file key that has one. */
static void make_options(void)
{
        size_t n = 0;
        for (size_t i = 0; i < ARRAY_SIZE(fixed_options); i++)
                options[n++] = fixed_options[i];
        for (size_t i = 0; i < vs_n_keys && i < MAX_KEYS; i++) {
                const VsKey *k = &vs_keys[i];
                if (!k->option)
                        continue;
                snprintf(key_name[i], sizeof key_name[i], "%s.%s", k->section, k->name);
                snprintf(key_where[i], sizeof key_where[i], "--%s", k->option);
                options[n++] =
                    (struct option){k->option, required_argument, NULL, OPT_KEY + (int)i};
        }
        options[n] = (struct option){0};
}

static const char synopsis[] = "NAME [--template busybox|debian|DIR|TARBALL|clone:OTHER] [OPTIONS]";
static const char usage_head[] =
    "  --template T       busybox (default: offline, under a second), debian\n"
    "                     (debootstrap), a directory, a tarball, or clone:OTHER\n";
static const char usage_tail[] =
    "  --autostart        start it with vserver start --autostart (at boot)\n"
    "  --userns           its root is not the host's: a user namespace of its own,\n"
    "                     65536 host ids of its own (the default, unless the host\n"
    "                     setting userns = no)\n"
    "  --no-userns        its root is the host's root, held back by capabilities\n"
    "                     and seccomp (Linux-VServer's and privileged LXC's model)\n"
    "  --set KEY=VALUE    any guest file key (vserver help keys), e.g.\n"
    "                     --set limits.nofile=4096\n"
    "  --suite S          debian: the suite (default from the host settings, bookworm)\n"
    "  --mirror URL       debian: the mirror\n"
    "  --debian-init I    debian: systemd (default) or sysvinit\n"
    "  --root-dir DIR     the installation under DIR (default $VSERVER_ROOT or /)\n";

/* Append @text wrapped at 79 columns, its lines after the first indented to column 21. */
static size_t put_wrapped(char *buf, size_t size, size_t used, const char *text)
{
        size_t col = 21;
        bool first = true;
        for (const char *p = text; *p && used < size;) {
                size_t w = strcspn(p, " ");
                if (!first && col + 1 + w > 79) {
                        used += (size_t)snprintf(buf + used, size - used, "\n%21s", "");
                        col = 21;
                } else if (!first) {
                        used += (size_t)snprintf(buf + used, size - used, " ");
                        col++;
                }
                if (used < size)
                        used += (size_t)snprintf(buf + used, size - used, "%.*s", (int)w, p);
                col += w;
                first = false;
                p += w + (p[w] ? 1 : 0);
        }
        return used < size ? used + (size_t)snprintf(buf + used, size - used, "\n") : used;
}

/* The template option, then one line per key with a build option (keys.c), then the rest. */
static const char *build_usage(void)
{
        static char buf[8192];
        if (buf[0])
                return buf;
        size_t used = (size_t)snprintf(buf, sizeof buf, "%s", usage_head);
        for (size_t i = 0; i < vs_n_keys && used < sizeof buf; i++) {
                const VsKey *k = &vs_keys[i];
                char opt[40];
                if (!k->option)
                        continue;
                snprintf(opt, sizeof opt, "--%s %s", k->option, k->arg ? k->arg : "V");
                used += (size_t)snprintf(buf + used, sizeof buf - used, "  %-18s ", opt);
                char help[512];
                snprintf(help, sizeof help, "%s%s", k->help,
                         k->flags & VS_KEY_MULTI ? " (repeatable)" : "");
                used = put_wrapped(buf, sizeof buf, used, help);
        }
        if (used < sizeof buf)
                snprintf(buf + used, sizeof buf - used, "%s", usage_tail);
        return buf;
}

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
        VsError err = {0};
        char setkeys[64][128];
        int c;

        make_options();
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
                const char *key = NULL, *where = NULL;
                if (c >= OPT_KEY && c < OPT_KEY + MAX_KEYS) {
                        key = key_name[c - OPT_KEY];
                        where = key_where[c - OPT_KEY];
                        c = 0;
                }
                switch (c) {
                case 0:
                        break;
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
                default:
                        return opts_other(c, argv, verb, synopsis, build_usage());
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
        VsBuildSpec spec = {.template_arg = b.template_arg,
                            .suite = b.suite,
                            .mirror = b.mirror,
                            .sysvinit = b.sysvinit,
                            .sets = b.sets,
                            .where = b.where,
                            .n_sets = b.n_sets};
        VsBuild *bd = calloc(1, sizeof *bd);
        if (!bd)
                return fail(EXIT_FAILURE, verb, "out of memory");
        if (vs_build_plan(bd, &h.paths, &h.conf, h.cgroup_parent, name, &spec, &err) < 0) {
                free(bd);
                return fail_error(EXIT_USAGE, verb, &err);
        }
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        bd->note = note;
        int r = vs_build_run(bd, &err);
        int rc = 0;
        if (r < 0 && err.code == EINTR)
                rc = fail(130, verb, "%s: interrupted; nothing was left behind", name);
        else if (r < 0)
                rc = fail_error(EXIT_FAILURE, verb, &err);
        else
                fprintf(stderr, "%s: built %s (context %u) from %s in %.1fs\n", vs_program, name,
                        bd->g.cfg.context, bd->src, bd->seconds);
        if (r == 0)
                note_io_v1(verb, &bd->g.cfg.limits);
        free(bd);
        return rc;
}

const Verb verb_build_def = {
    .name = "build",
    .run = verb_build,
    .synopsis = synopsis,
    .summary = "make a new guest from a template",
    .usage_fn = build_usage,
};
