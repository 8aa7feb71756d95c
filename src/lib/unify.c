/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification: vs_unify, the phases in order (unify_int.h). */
#include "unify_int.h"

int vs_unify(const VsUnifyTree *trees, int n, const VsUnifyOptions *o, VsUnifyStats *st,
             VsError *err)
{
        Ctx c;
        long long t0 = unify_now_ns();
        *st = (VsUnifyStats){.mode = "none"};
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
                r = unify_share_all(&c);
        st->seconds = (double)(unify_now_ns() - t0) / 1e9;
        if (r < 0 && err)
                *err = c.err;
        unify_ctx_free(&c);
        return r;
}
