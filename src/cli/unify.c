/* SPDX-License-Identifier: GPL-2.0-or-later */
/* unify, deunify: files that guests have in common, stored once. */
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/guest.h"
#include "../lib/unify.h"
#include "../lib/util.h"
#include "cli.h"

typedef struct Member {
        VsGuest g;
        VsGuestState st;
        bool have_state;
        bool froze; /* frozen by us */
        int lock;
        const char *pats[VS_CONFIG_MAX_EXCLUDES + 64];
        char host_pats[1024];
} Member;

/* Every guest of the installation: locked, its state known; some of them worked on. */
typedef struct Farm {
        Host h;
        Member *m;
        int n;
        char pending[PATH_MAX], frozen_list[PATH_MAX], lockpath[PATH_MAX];
        int unify_lock;
        const char *verb;
        json_object *links; /* --json with --dry-run or --verbose */
        bool verbose, tty_progress;
        int progress_len;
} Farm;

static void farm_free(Farm *f)
{
        for (int i = 0; i < f->n; i++) {
                if (f->m[i].have_state)
                        vs_guest_state_release(&f->m[i].st);
                if (f->m[i].lock >= 0)
                        close(f->m[i].lock);
        }
        free(f->m);
        if (f->unify_lock >= 0)
                close(f->unify_lock);
        if (f->links)
                json_object_put(f->links);
}

/* Write the names we froze (for a rerun after a crash), or remove the list. */
static int note_frozen(Farm *f)
{
        char buf[65536];
        size_t used = 0;
        for (int i = 0; i < f->n; i++)
                if (f->m[i].froze && used + strlen(f->m[i].g.cfg.name) + 2 < sizeof buf)
                        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\n",
                                                 f->m[i].g.cfg.name);
        if (!used)
                return unlink(f->frozen_list) < 0 && errno != ENOENT ? -errno : 0;
        int fd = open(f->frozen_list, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        int r = vs_write_all(fd, buf, used);
        fsync(fd);
        close(fd);
        return r;
}

/* The callback the library freezes every running guest through, around a batch. */
static int farm_freeze(void *data, bool on, VsError *err)
{
        Farm *f = data;
        int r = 0;
        if (on) {
                for (int i = 0; i < f->n; i++) {
                        Member *m = &f->m[i];
                        m->froze = m->have_state && m->st.running && !m->st.frozen;
                }
                if ((r = note_frozen(f)) < 0)
                        return vs_error(err, -r, "write %s", f->frozen_list);
        }
        for (int i = 0; i < f->n && r == 0; i++) {
                Member *m = &f->m[i];
                if (m->froze && vs_guest_suspend(&m->st, on, err) < 0) {
                        r = -err->code;
                        vs_error_prefix(err, "%s %s", on ? "freeze" : "thaw", m->g.cfg.name);
                }
        }
        if (!on && r == 0) {
                for (int i = 0; i < f->n; i++)
                        f->m[i].froze = false;
                (void)note_frozen(f);
        }
        return r;
}

static void progress(void *data, const VsUnifyProgress *p)
{
        Farm *f = data;
        if (!f->tty_progress)
                return;
        int n;
        if (p->total)
                n = fprintf(stderr, "\r%s: %llu of %llu (%llu%%)", p->phase,
                            (unsigned long long)p->done, (unsigned long long)p->total,
                            (unsigned long long)(p->done * 100 / p->total));
        else
                n = fprintf(stderr, "\r%s: %llu files", p->phase, (unsigned long long)p->done);
        if (n < f->progress_len)
                fprintf(stderr, "%*s", f->progress_len - n, "");
        f->progress_len = n;
}

static void progress_end(Farm *f)
{
        if (f->tty_progress && f->progress_len)
                fprintf(stderr, "\r%*s\r", f->progress_len, "");
        f->progress_len = 0;
}

static void report(void *data, const char *guest, const char *path, const char *with_guest,
                   const char *with_path, uint64_t size)
{
        Farm *f = data;
        if (f->links) {
                json_object *l = json_object_new_object();
                json_object_object_add(l, "guest", json_object_new_string(guest));
                json_object_object_add(l, "path", json_object_new_string(path));
                json_object_object_add(l, "with_guest", json_object_new_string(with_guest));
                json_object_object_add(l, "with_path", json_object_new_string(with_path));
                json_object_object_add(l, "size", json_object_new_uint64(size));
                json_object_array_add(f->links, l);
        } else if (f->verbose) {
                char b[32];
                progress_end(f);
                printf("%s:/%s = %s:/%s (%s)\n", guest, path, with_guest, with_path,
                       stats_bytes(size, b, sizeof b));
        }
}

/*
 * Load and lock every guest (but @skip, whose lock the caller holds); fail
 * if another unify runs or a guest is busy.  A broken guest file fails the
 * command unless @tolerant (delete): its guest is still frozen if it runs.
 */
static int farm_load(Farm *f, const char *root_dir, const char *verb, const char *skip,
                     bool tolerant)
{
        VsError err = {0};
        char **names = NULL;
        int n = 0;
        f->verb = verb;
        f->unify_lock = -1;
        if (host_load(&f->h, root_dir, verb) < 0)
                return -1;
        snprintf(f->pending, sizeof f->pending, "%s/unify.pending", f->h.paths.run);
        snprintf(f->frozen_list, sizeof f->frozen_list, "%s/unify.frozen", f->h.paths.run);
        snprintf(f->lockpath, sizeof f->lockpath, "%s/unify.lock", f->h.paths.run);
        (void)mkdir(f->h.paths.run, 0755);
        f->unify_lock = open(f->lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f->unify_lock < 0 || flock(f->unify_lock, LOCK_EX | LOCK_NB) < 0) {
                fail(EXIT_FAILURE, verb, "another unify, deunify or delete is at work (%s)",
                     f->lockpath);
                return -1;
        }
        if (vs_guest_list(&f->h.paths, &names, &n, &err) < 0) {
                fail_error(EXIT_FAILURE, verb, &err);
                return -1;
        }
        f->m = calloc((size_t)(n ? n : 1), sizeof *f->m);
        int r = f->m ? 0 : -1;
        for (int i = 0; i < n; i++) {
                if (r == 0) {
                        Member *m = &f->m[f->n];
                        m->lock = -1;
                        if (vs_guest_init(&m->g, &f->h.paths, &f->h.conf, f->h.cgroup_parent,
                                          names[i], &err) < 0 ||
                            (vs_guest_config_load(&m->g.cfg, m->g.conf, &err) < 0 && !tolerant)) {
                                fail_error(EXIT_FAILURE, verb, &err);
                                r = -1;
                        } else if ((!skip || !streq(skip, names[i])) &&
                                   guest_lock(&m->g, verb, &m->lock) < 0) {
                                r = -1;
                        } else if (vs_guest_state(&m->g, &m->st, &err) < 0) {
                                fail_error(EXIT_FAILURE, verb, &err);
                                r = -1;
                        } else {
                                m->have_state = true;
                        }
                        f->n++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

static Member *farm_find(Farm *f, const char *name)
{
        for (int i = 0; i < f->n; i++)
                if (streq(f->m[i].g.cfg.name, name))
                        return &f->m[i];
        return NULL;
}

static void tree_of(Farm *f, Member *m, VsUnifyTree *t)
{
        int n = 0;
        for (int i = 0; i < m->g.cfg.n_unify_exclude; i++)
                m->pats[n++] = m->g.cfg.unify_exclude[i];
        snprintf(m->host_pats, sizeof m->host_pats, "%s", f->h.conf.unify_exclude);
        char *save = NULL;
        for (char *s = strtok_r(m->host_pats, " \t", &save); s && n < (int)ARRAY_SIZE(m->pats);
             s = strtok_r(NULL, " \t", &save))
                m->pats[n++] = s;
        VsCaps caps = vs_guest_caps(&m->g.cfg);
        *t = (VsUnifyTree){
            .name = m->g.cfg.name,
            .root = m->g.rootfs,
            .running = m->st.running,
            /*
             * a guest that may set file flags or mount over the host's could undo the
             * protection; in a user namespace of its own its mounts are its own
             */
            .no_link = (caps & ((VsCaps)1 << CAP_LINUX_IMMUTABLE)) ||
                       (!m->g.cfg.userns && (caps & ((VsCaps)1 << CAP_SYS_ADMIN))),
            .patterns = m->pats,
            .n_patterns = n,
        };
}

static void options_base(Farm *f, VsUnifyOptions *o)
{
        o->freeze = farm_freeze;
        o->freeze_data = f;
        o->report = report;
        o->progress = progress;
        o->data = f;
        o->pending = f->pending;
}

/*
 * An earlier run was killed mid-way: protect every shared inode again,
 * remove its temporary names, and thaw the guests it had frozen.
 */
static int farm_recover(Farm *f)
{
        if (access(f->pending, F_OK) < 0)
                return 0;
        VsUnifyTree *trees = calloc((size_t)(f->n ? f->n : 1), sizeof *trees);
        VsUnifyOptions o = {0};
        VsError err = {0};
        if (!trees)
                return fail(EXIT_FAILURE, f->verb, "out of memory");
        options_base(f, &o);
        o.progress = NULL;
        o.pending = NULL;
        for (int i = 0; i < f->n; i++)
                tree_of(f, &f->m[i], &trees[i]);
        fprintf(stderr, "vserver: %s: an earlier unify was interrupted; repairing first\n",
                f->verb);
        int r = vs_unify_repair(trees, f->n, &o, &err);
        free(trees);
        if (r < 0)
                return fail_error(EXIT_FAILURE, f->verb, &err);
        /* the guests it froze (and only those) */
        char buf[65536];
        ssize_t n = vs_read_file_at(AT_FDCWD, f->frozen_list, buf, sizeof buf);
        for (char *save = NULL, *s = n > 0 ? strtok_r(buf, "\n", &save) : NULL; s;
             s = strtok_r(NULL, "\n", &save)) {
                Member *m = farm_find(f, s);
                if (m && m->have_state && m->st.running && m->st.frozen) {
                        if (vs_guest_suspend(&m->st, false, &err) < 0)
                                return fail_error(EXIT_FAILURE, f->verb, &err);
                        m->st.frozen = false;
                }
        }
        unlink(f->frozen_list);
        if (unlink(f->pending) < 0 && errno != ENOENT)
                return fail(EXIT_FAILURE, f->verb, "remove %s: %m", f->pending);
        return 0;
}

static void summary_json(const VsUnifyStats *st, json_object *j)
{
        json_object_object_add(j, "mode", json_object_new_string(st->mode));
        json_object_object_add(j, "files", json_object_new_uint64(st->files));
        json_object_object_add(j, "bytes", json_object_new_uint64(st->bytes));
        json_object_object_add(j, "excluded", json_object_new_uint64(st->excluded));
        json_object_object_add(j, "candidates", json_object_new_uint64(st->candidates));
        json_object_object_add(j, "bytes_read", json_object_new_uint64(st->bytes_read));
        json_object_object_add(j, "shared", json_object_new_uint64(st->shared));
        json_object_object_add(j, "already_shared", json_object_new_uint64(st->already));
        json_object_object_add(j, "bytes_saved", json_object_new_uint64(st->bytes_saved));
        json_object_object_add(j, "skipped_busy", json_object_new_uint64(st->busy));
        json_object_object_add(j, "skipped_changed", json_object_new_uint64(st->changed));
        json_object_object_add(j, "skipped_setuid", json_object_new_uint64(st->setuid));
        json_object_object_add(j, "deunified", json_object_new_uint64(st->deunified));
        json_object_object_add(j, "seconds", json_object_new_double(st->seconds));
}

/* --help, a missing value, an unknown option: the exit code. */
static int other_option(int c, char **argv, const Verb *def)
{
        if (c == 'h') {
                printf("Usage: %s %s %s\n\n%s", vs_program, def->name, def->synopsis, def->usage);
                return 0;
        }
        if (c == ':')
                return fail(EXIT_USAGE, def->name, "%s needs a value", argv[optind - 1]);
        return fail(EXIT_USAGE, def->name, "unknown option %s (see %s help %s)", argv[optind - 1],
                    vs_program, def->name);
}

enum { U_DRY = 1000, U_MTIME, U_SETUID, U_MODE, U_JOBS };

static int verb_unify(int argc, char **argv)
{
        static const char verb[] = "unify";
        static const struct option opts[] = {
            {"root-dir", required_argument, NULL, 'R'},
            {"all", no_argument, NULL, 'a'},
            {"dry-run", no_argument, NULL, 'n'},
            {"ignore-mtime", no_argument, NULL, U_MTIME},
            {"setuid", no_argument, NULL, U_SETUID},
            {"mode", required_argument, NULL, U_MODE},
            {"jobs", required_argument, NULL, 'j'},
            {"json", no_argument, NULL, 'J'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        VsUnifyOptions uo = {0};
        const char *root_dir = NULL;
        bool all = false, json = false, verbose = false;
        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":anvj:", opts, NULL)) != -1) {
                switch (c) {
                case 'R':
                        root_dir = optarg;
                        break;
                case 'a':
                        all = true;
                        break;
                case 'n':
                        uo.dry_run = true;
                        break;
                case 'v':
                        verbose = true;
                        break;
                case U_MTIME:
                        uo.ignore_mtime = true;
                        break;
                case U_SETUID:
                        uo.setuid = true;
                        break;
                case U_MODE:
                        if (streq(optarg, "auto"))
                                uo.mode = VS_UNIFY_AUTO;
                        else if (streq(optarg, "link"))
                                uo.mode = VS_UNIFY_LINK;
                        else if (streq(optarg, "reflink"))
                                uo.mode = VS_UNIFY_REFLINK;
                        else
                                return fail(EXIT_USAGE, verb,
                                            "--mode \"%s\": say auto, link or reflink", optarg);
                        break;
                case 'j': {
                        unsigned long long n;
                        if (vs_parse_u64(optarg, &n) < 0 || n < 1 || n > 64)
                                return fail(EXIT_USAGE, verb,
                                            "--jobs \"%s\" is not a number of threads (1 to 64)",
                                            optarg);
                        uo.jobs = (int)n;
                        break;
                }
                case 'J':
                        json = true;
                        break;
                default:
                        return other_option(c, argv, &verb_unify_def);
                }
        }
        if (all == (optind < argc))
                return fail(EXIT_USAGE, verb, "name the guests, or say --all (say %s unify a b)",
                            vs_program);
        Farm f = {0};
        int rc = EXIT_FAILURE;
        if (farm_load(&f, root_dir, verb, NULL, false) < 0)
                goto out;
        VsUnifyTree *trees = calloc((size_t)(f.n ? f.n : 1), sizeof *trees);
        int nt = 0;
        if (!trees)
                goto out;
        for (int i = optind; i < argc; i++) {
                Member *m = farm_find(&f, argv[i]);
                if (!m) {
                        rc = fail(EXIT_FAILURE, verb, "no guest \"%s\"", argv[i]);
                        free(trees);
                        goto out;
                }
                for (int k = optind; k < i; k++)
                        if (streq(argv[k], argv[i])) {
                                rc = fail(EXIT_USAGE, verb, "%s is named twice", argv[i]);
                                free(trees);
                                goto out;
                        }
                tree_of(&f, m, &trees[nt++]);
        }
        if (all)
                for (int i = 0; i < f.n; i++)
                        tree_of(&f, &f.m[i], &trees[nt++]);
        if (nt == 0) {
                rc = fail(EXIT_FAILURE, verb, "there are no guests");
                free(trees);
                goto out;
        }
        if (farm_recover(&f) != 0) {
                free(trees);
                goto out;
        }
        options_base(&f, &uo);
        f.verbose = verbose || uo.dry_run;
        f.tty_progress = isatty(STDERR_FILENO) && !json;
        if (!f.tty_progress)
                uo.progress = NULL;
        if (json && f.verbose)
                f.links = json_object_new_array();
        VsUnifyStats st;
        VsError err = {0};
        int r = vs_unify(trees, nt, &uo, &st, &err);
        progress_end(&f);
        if (r < 0) {
                rc = fail_error(EXIT_FAILURE, verb, &err);
                free(trees);
                goto out;
        }
        for (int i = 0; i < nt; i++)
                if (trees[i].no_link && !streq(st.mode, "reflink"))
                        fprintf(stderr,
                                "vserver: %s: %s may change file flags (LINUX_IMMUTABLE or "
                                "SYS_ADMIN): its files were not linked\n",
                                verb, trees[i].name);
        if (json) {
                json_object *j = json_object_new_object();
                json_object *g = json_object_new_array();
                for (int i = 0; i < nt; i++)
                        json_object_array_add(g, json_object_new_string(trees[i].name));
                json_object_object_add(j, "guests", g);
                json_object_object_add(j, "dry_run", json_object_new_boolean(uo.dry_run));
                summary_json(&st, j);
                if (f.links) {
                        json_object_object_add(j, "links", f.links);
                        f.links = NULL;
                }
                json_print(j);
                json_object_put(j);
        } else {
                char b1[32], b2[32];
                printf("%s %llu files (%s), %s %s, in %.2f s\n",
                       uo.dry_run ? "would share" : "shared", (unsigned long long)st.shared,
                       st.mode, uo.dry_run ? "would save" : "saved",
                       stats_bytes(st.bytes_saved, b1, sizeof b1), st.seconds);
                printf("scanned %llu files (%s), %llu excluded, %llu candidates, %s read; "
                       "%llu already shared",
                       (unsigned long long)st.files, stats_bytes(st.bytes, b2, sizeof b2),
                       (unsigned long long)st.excluded, (unsigned long long)st.candidates,
                       stats_bytes(st.bytes_read, b1, sizeof b1), (unsigned long long)st.already);
                if (st.busy || st.changed || st.setuid)
                        printf("; left alone: %llu open for writing, %llu changed meanwhile, "
                               "%llu setuid/setgid",
                               (unsigned long long)st.busy, (unsigned long long)st.changed,
                               (unsigned long long)st.setuid);
                printf("\n");
        }
        free(trees);
        rc = 0;
out:
        farm_free(&f);
        return rc;
}

static int verb_deunify(int argc, char **argv)
{
        static const char verb[] = "deunify";
        static const struct option opts[] = {
            {"root-dir", required_argument, NULL, 'R'},
            {"json", no_argument, NULL, 'J'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *root_dir = NULL;
        bool json = false;
        int c;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
                switch (c) {
                case 'R':
                        root_dir = optarg;
                        break;
                case 'J':
                        json = true;
                        break;
                default:
                        return other_option(c, argv, &verb_deunify_def);
                }
        }
        if (optind >= argc)
                return fail(EXIT_USAGE, verb, "name a guest (say %s deunify NAME [PATH...])",
                            vs_program);
        Farm f = {0};
        int rc = EXIT_FAILURE;
        if (farm_load(&f, root_dir, verb, NULL, false) < 0)
                goto out;
        Member *m = farm_find(&f, argv[optind]);
        if (!m) {
                rc = fail(EXIT_FAILURE, verb, "no guest \"%s\"", argv[optind]);
                goto out;
        }
        for (int i = optind + 1; i < argc; i++)
                if (argv[i][0] != '/') {
                        rc = fail(EXIT_USAGE, verb, "\"%s\" is not a path in the guest (say /usr)",
                                  argv[i]);
                        goto out;
                }
        if (farm_recover(&f) != 0)
                goto out;
        VsUnifyTree t;
        VsUnifyOptions uo = {0};
        VsUnifyStats st;
        VsError err = {0};
        tree_of(&f, m, &t);
        options_base(&f, &uo);
        f.tty_progress = isatty(STDERR_FILENO) && !json;
        if (!f.tty_progress)
                uo.progress = NULL;
        bool any_running = false;
        for (int i = 0; i < f.n; i++)
                any_running |= f.m[i].have_state && f.m[i].st.running;
        if (!any_running)
                uo.freeze = NULL;
        int r = vs_deunify(&t, (const char *const *)argv + optind + 1, argc - optind - 1, &uo, &st,
                           &err);
        progress_end(&f);
        if (r < 0) {
                rc = fail_error(EXIT_FAILURE, verb, &err);
                goto out;
        }
        if (json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "guest", json_object_new_string(t.name));
                json_object_object_add(j, "deunified", json_object_new_uint64(st.deunified));
                json_object_object_add(j, "seconds", json_object_new_double(st.seconds));
                json_print(j);
                json_object_put(j);
        } else {
                printf("%s: %llu files made private again, in %.2f s\n", t.name,
                       (unsigned long long)st.deunified, st.seconds);
        }
        rc = 0;
out:
        farm_free(&f);
        return rc;
}

/* For delete: drop @g's links to inodes that other guests share, under the same rules. */
int unify_release(const char *root_dir, const VsGuest *g, const char *verb)
{
        Farm f = {0};
        VsUnifyOptions uo = {0};
        VsError err = {0};
        int rc = EXIT_FAILURE;
        if (farm_load(&f, root_dir, verb, g->cfg.name, true) < 0)
                goto out;
        if (farm_recover(&f) != 0)
                goto out;
        options_base(&f, &uo);
        uo.progress = NULL;
        if (vs_unify_release(g->rootfs, &uo, &err) < 0) {
                rc = fail_error(EXIT_FAILURE, verb, &err);
                goto out;
        }
        rc = 0;
out:
        farm_free(&f);
        return rc;
}

const Verb verb_unify_def = {
    .name = "unify",
    .run = verb_unify,
    .synopsis = "NAME...|--all [--dry-run] [--json] [OPTIONS]",
    .summary = "store files that guests have in common once (links or reflinks)",
    .usage = "  --all              every guest\n"
             "  -n, --dry-run      show what would be shared and the bytes it would save\n"
             "  --ignore-mtime     files may differ in their modification time\n"
             "  --setuid           setuid and setgid files too\n"
             "  --mode MODE        auto (reflink on btrfs and xfs, else link), link, reflink\n"
             "  -j, --jobs N       threads (default: one per CPU)\n"
             "  -v, --verbose      each path shared\n"
             "  --json             machine-readable (with -n or -v: each path too)\n"
             "  --root-dir DIR     the installation under DIR\n"
             "\n"
             "Linked files are immutable until `vserver deunify NAME`. Guests that run are\n"
             "frozen for the moments in which a shared file changes hands.\n",
};

const Verb verb_deunify_def = {
    .name = "deunify",
    .run = verb_deunify,
    .synopsis = "NAME [PATH...] [--json]",
    .summary = "give a guest private copies of its unified files (all, or under PATHs)",
    .usage = "  --json             machine-readable\n"
             "  --root-dir DIR     the installation under DIR\n",
};
