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

#include "../lib/cow.h"
#include "../lib/farm.h"
#include "../lib/guest.h"
#include "../lib/unify.h"
#include "../lib/util.h"
#include "cli.h"
#include "opts.h"

/* What a unify or deunify shows while it works. */
typedef struct Display {
        json_object *links; /* --json with --dry-run or --verbose */
        bool verbose, tty_progress;
        int progress_len;
} Display;

static void progress(void *data, const VsUnifyProgress *p)
{
        Display *f = data;
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

static void progress_end(Display *f)
{
        if (f->tty_progress && f->progress_len)
                fprintf(stderr, "\r%*s\r", f->progress_len, "");
        f->progress_len = 0;
}

static void report(void *data, const char *guest, const char *path, const char *with_guest,
                   const char *with_path, uint64_t size)
{
        Display *f = data;
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

/* The installation's guests under the unify lock (vs_farm_close it either way). */
static int farm_open(VsFarm *f, Host *h, const char *root_dir, const char *verb, const char *skip,
                     bool tolerant)
{
        VsError err = {0};
        if (host_load(h, root_dir, verb) < 0)
                return -1;
        if (vs_farm_open(f, &h->paths, &h->conf, h->cgroup_parent, skip, tolerant, &err) < 0) {
                fail_error(EXIT_FAILURE, verb, &err);
                return -1;
        }
        return 0;
}

/* What an interrupted unify left, repaired before anything else. */
static int farm_recover(VsFarm *f, const char *verb)
{
        VsError err = {0};
        if (!vs_farm_interrupted(f))
                return 0;
        fprintf(stderr, "%s: %s: an earlier unify was interrupted; repairing first\n", vs_program,
                verb);
        return vs_farm_recover(f, &err) < 0 ? fail_error(EXIT_FAILURE, verb, &err) : 0;
}

static void display_options(Display *d, VsUnifyOptions *o)
{
        o->report = report;
        o->progress = d->tty_progress ? progress : NULL;
        o->data = d;
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

/*
 * Overlay: the guests that can take it now, with their layers; the others
 * are named on stderr with why not.
 */
static int overlay_trees(VsFarm *f, const char *store, VsUnifyTree *trees, int *nt,
                         VsUnifyOptions *uo, const char *verb)
{
        if (!vs_cow_supported())
                return fail(EXIT_FAILURE, verb,
                            "--mode overlay: this kernel's overlayfs has no data-only layers "
                            "(Linux 6.7 or newer; say --mode link or reflink)");
        int k = 0;
        for (int i = 0; i < *nt; i++) {
                VsFarmMember *m = vs_farm_find(f, trees[i].name);
                struct stat r, d;
                if (trees[i].running) {
                        fprintf(stderr,
                                "%s: %s: %s runs: its files are shared once it is stopped (run "
                                "unify again then)\n",
                                vs_program, verb, trees[i].name);
                        continue;
                }
                if (stat(m->g.rootfs, &r) < 0 || stat(m->g.dir, &d) < 0 || r.st_dev != d.st_dev) {
                        fprintf(stderr,
                                "%s: %s: %s has a disk image of its own: left alone (--mode "
                                "link shares inside one image only)\n",
                                vs_program, verb, trees[i].name);
                        continue;
                }
                trees[k] = trees[i];
                trees[k].base = m->g.base;
                trees[k].work = m->g.work;
                k++;
        }
        *nt = k;
        uo->store = store;
        uo->freeze = NULL; /* nothing that runs is touched */
        return 0;
}

/* The store files no guest names any more, reclaimed. */
static int store_gc(VsFarm *f, const char *store, uint64_t *files, uint64_t *bytes,
                    const char *verb)
{
        const char **bases = calloc((size_t)f->n + 1, sizeof *bases);
        if (!bases)
                return fail(EXIT_FAILURE, verb, "out of memory");
        for (int i = 0; i < f->n; i++)
                bases[i] = f->m[i].g.base;
        VsError err = {0};
        int r = vs_cow_gc(store, bases, f->n, files, bytes, &err);
        free(bases);
        return r < 0 ? fail_error(EXIT_FAILURE, verb, &err) : 0;
}

static int other_option(int c, char **argv, const Verb *def)
{
        return opts_other(c, argv, def->name, def->synopsis, def->usage);
}

enum { U_DRY = 1000, U_MTIME, U_SETUID, U_MODE, U_JOBS, U_GC };

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
            {"gc", no_argument, NULL, U_GC},
            {"jobs", required_argument, NULL, 'j'},
            {"json", no_argument, NULL, 'J'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        VsUnifyOptions uo = {0};
        const char *root_dir = NULL;
        bool all = false, json = false, verbose = false, gc_only = false;
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
                case U_GC:
                        gc_only = true;
                        break;
                case U_MODE:
                        if (streq(optarg, "auto"))
                                uo.mode = VS_UNIFY_AUTO;
                        else if (streq(optarg, "link"))
                                uo.mode = VS_UNIFY_LINK;
                        else if (streq(optarg, "reflink"))
                                uo.mode = VS_UNIFY_REFLINK;
                        else if (streq(optarg, "overlay"))
                                uo.mode = VS_UNIFY_OVERLAY;
                        else
                                return fail(EXIT_USAGE, verb,
                                            "--mode \"%s\": say auto, overlay, link or reflink",
                                            optarg);
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
        if (gc_only && (all || optind < argc || uo.dry_run))
                return fail(EXIT_USAGE, verb, "--gc works on the whole store: name no guest");
        if (!gc_only && all == (optind < argc))
                return fail(EXIT_USAGE, verb, "name the guests, or say --all (say %s unify a b)",
                            vs_program);
        Host h;
        VsFarm f = {.unify_lock = -1};
        Display d = {0};
        int rc = EXIT_FAILURE;
        if (farm_open(&f, &h, root_dir, verb, NULL, false) < 0)
                goto out;
        if (gc_only) {
                uint64_t files = 0, bytes = 0;
                if (farm_recover(&f, verb) != 0 ||
                    store_gc(&f, h.paths.store, &files, &bytes, verb) < 0)
                        goto out;
                char b[32];
                if (json) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "removed", json_object_new_uint64(files));
                        json_object_object_add(j, "bytes_freed", json_object_new_uint64(bytes));
                        json_print(j);
                        json_object_put(j);
                } else {
                        printf("store: %llu files no guest shares any more removed, %s freed\n",
                               (unsigned long long)files, stats_bytes(bytes, b, sizeof b));
                }
                rc = 0;
                goto out;
        }
        VsUnifyTree *trees = calloc((size_t)(f.n ? f.n : 1), sizeof *trees);
        int nt = 0;
        if (!trees)
                goto out;
        for (int i = optind; i < argc; i++) {
                VsFarmMember *m = vs_farm_find(&f, argv[i]);
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
                vs_farm_tree(&f, m, &trees[nt++]);
        }
        if (all)
                for (int i = 0; i < f.n; i++)
                        vs_farm_tree(&f, &f.m[i], &trees[nt++]);
        if (nt == 0) {
                rc = fail(EXIT_FAILURE, verb, "there are no guests");
                free(trees);
                goto out;
        }
        if (farm_recover(&f, verb) != 0) {
                free(trees);
                goto out;
        }
        vs_farm_options(&f, &uo);
        if (uo.mode == VS_UNIFY_AUTO && vs_cow_supported())
                uo.mode = VS_UNIFY_OVERLAY;
        if (uo.mode == VS_UNIFY_OVERLAY &&
            overlay_trees(&f, h.paths.store, trees, &nt, &uo, verb) < 0) {
                free(trees);
                goto out;
        }
        d.verbose = verbose || uo.dry_run;
        d.tty_progress = isatty(STDERR_FILENO) && !json;
        display_options(&d, &uo);
        if (json && d.verbose)
                d.links = json_object_new_array();
        VsUnifyStats st;
        VsError err = {0};
        int r = vs_unify(trees, nt, &uo, &st, &err);
        progress_end(&d);
        uint64_t gc_files = 0, gc_bytes = 0;
        if (r == 0 && uo.store && !uo.dry_run &&
            store_gc(&f, h.paths.store, &gc_files, &gc_bytes, verb) < 0) {
                free(trees);
                goto out;
        }
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
                json_object_object_add(j, "store_removed", json_object_new_uint64(gc_files));
                if (d.links) {
                        json_object_object_add(j, "links", d.links);
                        d.links = NULL;
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
        vs_farm_close(&f);
        if (d.links)
                json_object_put(d.links);
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
        Host h;
        VsFarm f = {.unify_lock = -1};
        Display d = {0};
        int rc = EXIT_FAILURE;
        if (farm_open(&f, &h, root_dir, verb, NULL, false) < 0)
                goto out;
        VsFarmMember *m = vs_farm_find(&f, argv[optind]);
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
        if (farm_recover(&f, verb) != 0)
                goto out;
        VsUnifyTree t;
        VsUnifyOptions uo = {0};
        VsUnifyStats st;
        VsError err = {0};
        vs_farm_tree(&f, m, &t);
        vs_farm_options(&f, &uo);
        d.tty_progress = isatty(STDERR_FILENO) && !json;
        display_options(&d, &uo);
        if (!vs_farm_any_running(&f))
                uo.freeze = NULL;
        uint64_t cow_files = 0;
        if (vs_cow_enabled(m->g.dir)) {
                if (m->st.running) {
                        rc = fail(EXIT_FAILURE, verb,
                                  "%s runs: stop it first (its shared files are writable as they "
                                  "are: a write gives it its own copy)",
                                  t.name);
                        goto out;
                }
                VsCowLayers l;
                vs_guest_layers(&m->g, &l);
                if (vs_cow_deunify(&l, (const char *const *)argv + optind + 1, argc - optind - 1,
                                   &cow_files, &err) < 0) {
                        rc = fail_error(EXIT_FAILURE, verb, &err);
                        goto out;
                }
        }
        int r = vs_deunify(&t, (const char *const *)argv + optind + 1, argc - optind - 1, &uo, &st,
                           &err);
        st.deunified += cow_files;
        progress_end(&d);
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
        vs_farm_close(&f);
        return rc;
}

const Verb verb_unify_def = {
    .name = "unify",
    .run = verb_unify,
    .synopsis = "NAME...|--all|--gc [--dry-run] [--json] [OPTIONS]",
    .summary = "store files that guests have in common once (overlay, links or reflinks)",
    .usage = "  --all              every guest\n"
             "  -n, --dry-run      show what would be shared and the bytes it would save\n"
             "  --ignore-mtime     files may differ in their modification time\n"
             "  --setuid           setuid and setgid files too\n"
             "  --mode MODE        auto (overlay where the kernel has it), overlay, link,\n"
             "                     reflink\n"
             "  --gc               only remove store files no guest shares any more\n"
             "  -j, --jobs N       threads (default: one per CPU)\n"
             "  -v, --verbose      each path shared\n"
             "  --json             machine-readable (with -n or -v: each path too)\n"
             "  --root-dir DIR     the installation under DIR\n"
             "\n"
             "overlay: stopped guests only; a shared file stays writable in each guest (its\n"
             "own copy on a write). link: immutable until `vserver deunify NAME`; running\n"
             "guests are frozen for the moments in which a shared file changes hands.\n",
};

const Verb verb_deunify_def = {
    .name = "deunify",
    .run = verb_deunify,
    .synopsis = "NAME [PATH...] [--json]",
    .summary = "give a guest private copies of its unified files (all, or under PATHs)",
    .usage = "  --json             machine-readable\n"
             "  --root-dir DIR     the installation under DIR\n",
};
