/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification: vs_unify, the phases in order (unify_int.h). */
#include "unify_int.h"

int vs_unify(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsUnifyStats *st,
             VsError *err)
{
        Ctx c;
        long long t0 = unify_now_ns();
        *st = (VsUnifyStats){.mode = "none"};
        /* overlay: the store is one more tree, its files the copies already kept */
        VsUnifyTree *all = NULL;
        if (o->store) {
                if (mkdir(o->store, 0700) < 0 && errno != EEXIST)
                        return vs_error(err, errno, "create %s", o->store);
                all = calloc((size_t)n + 1, sizeof *all);
                if (!all)
                        return vs_error(err, ENOMEM, "unify");
                memcpy(all, trees, (size_t)n * sizeof *all);
                all[n++] = (VsUnifyTree){.name = "store", .root = o->store};
                trees = all;
        }
        int r = unify_ctx_init(&c, trees, n, o, st);
        if (r == 0)
                r = unify_scan(&c, false);
        if (r == 0)
                r = unify_build_inos(&c);
        if (r == 0)
                r = unify_group(&c);
        if (r == 0)
                r = unify_prove(&c);
        if (r == 0)
                r = c.cow ? unify_cow_share_all(&c) : unify_share_all(&c);
        st->seconds = (double)(unify_now_ns() - t0) / 1e9;
        if (r < 0 && err)
                *err = c.err;
        unify_ctx_free(&c);
        free(all);
        return r;
}
