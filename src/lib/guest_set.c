/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vserver set: keys of a guest file, changed live where they can be, and saved. */
#include <string.h>
#include <unistd.h>

#include "guest.h"
#include "util.h"

int vs_guest_set_plan(VsGuest *g, VsGuestSet *s, VsError *err)
{
        /* a running guest's limits: as it runs (live changes too), not as its file says */
        VsGuestState st;
        int r = vs_guest_state(g, &st, err);
        if (r < 0)
                return r;
        (void)vs_guest_live_limits(g, &st);
        vs_guest_state_release(&st);
        s->prev = g->cfg.limits;
        s->all_live = true;
        bool addresses = false, routes = false;
        for (int i = 0; i < s->n; i++) {
                const char *k = s->keys[i];
                if (streq(k, "mount.bind"))
                        return vs_error_input(
                            err, "mount.bind holds several values: edit %s itself", g->conf);
                if (streq(k, "guest.context"))
                        return vs_error_input(err, "a guest's context id does not change");
                /* several values: what the command names replaces what was there */
                if (streq(k, "net.address") && !addresses) {
                        g->cfg.netcfg.n_addrs = 0;
                        addresses = true;
                }
                if (streq(k, "net.route") && !routes) {
                        g->cfg.netcfg.n_routes = 0;
                        routes = true;
                }
                r = vs_guest_config_set(&g->cfg, k, s->values[i], k, err);
                if (r < 0)
                        return r;
                s->all_live &= strncmp(k, "limits.", 7) == 0;
        }
        r = vs_guest_config_check(&g->cfg, g->cfg.name, err);
        return r < 0 ? r : vs_limits_check_host(&g->cfg.limits, err);
}

static bool disk_changed(const VsLimits *a, const VsLimits *b)
{
        return a->disk != b->disk || a->disk_inodes != b->disk_inodes ||
               a->disk_reserved_pct != b->disk_reserved_pct;
}

int vs_guest_set_run(VsGuest *g, VsGuestSet *s, bool save, VsError *err)
{
        _cleanup_close_ int lock = -EBADF;
        int r = vs_guest_lock(g, &lock, err);
        if (r < 0)
                return r;
        VsGuestState st;
        r = vs_guest_state(g, &st, err);
        if (r < 0)
                return r;
        s->running = st.running;
        if (!st.running && !save) {
                r = vs_error(err, ESRCH,
                             "%s is not running: nothing to change now (add --save to change its "
                             "guest file)",
                             g->cfg.name);
                goto out;
        }
        for (int i = 0; st.running && !s->all_live && !save && i < s->n; i++)
                if (strncmp(s->keys[i], "limits.", 7) != 0) {
                        r = vs_error(err, EBUSY,
                                     "%s cannot change while %s runs (add --save: it takes effect "
                                     "at the next start)",
                                     s->keys[i], g->cfg.name);
                        goto out;
                }
        /* a disk limit is on its files: running or not */
        if (disk_changed(&s->prev, &g->cfg.limits)) {
                VsError e = {0};
                char text[400];
                r = vs_guest_disk_apply(g, !st.running, s->disk_note, sizeof s->disk_note, &e);
                /* what only a stopped guest's image can do waits for its next start */
                bool later = r < 0 && st.running && (e.code == EBUSY || e.code == EPERM);
                if (later && save) {
                        snprintf(s->disk_note, sizeof s->disk_note, "%s: at its next start",
                                 vs_error_text(&e, text, sizeof text));
                        r = 0;
                } else if (later) {
                        r = vs_error(err, e.code,
                                     "%s (add --save: it takes effect at the next start)",
                                     vs_error_text(&e, text, sizeof text));
                        goto out;
                } else if (r < 0) {
                        if (err)
                                *err = e;
                        goto out;
                } else {
                        s->disk_live = true;
                }
        }
        if (st.running) {
                r = vs_guest_apply_limits(g, &st, &s->prev, err);
                if (r < 0) {
                        /* put back what ran before, as far as the kernel lets us */
                        VsLimits want = g->cfg.limits;
                        g->cfg.limits = s->prev;
                        (void)vs_guest_apply_limits(g, &st, &want, NULL);
                        goto out;
                }
                /* what it now runs with: for the next set, limits and stop */
                (void)vs_guest_note_limits(g, NULL);
                /* as many CPUs as its views now show, for what runs and what it starts */
                vs_guest_repin(g, &st);
        }
        if (save)
                r = vs_guest_config_edit(g->conf, s->keys, s->values, s->n, err);
out:
        vs_guest_state_release(&st);
        return r;
}
