/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The view server's text work, one process for every guest (a crash there
 * is every guest's /proc gone until it restarts): the files it makes from a
 * host file's text and a guest's numbers, the cgroup stat files it reads
 * ("key value" lines: a guest's own numbers, of any size), and the records
 * starts leave it.  The first byte picks one; then the numbers, then text.
 */
#include <sys/sysinfo.h>

#include "../../src/lib/cgroup_int.h"
#include "../../src/lib/viewd.h"
#include "../../src/lib/views.h"
#include "fuzz.h"

static const VsCgStatKey keys[] = {
    {"anon", offsetof(VsCgView, anon)},
    {"file", offsetof(VsCgView, file)},
    {"shmem", offsetof(VsCgView, shmem)},
    {"total_rss", offsetof(VsCgView, anon)},
    {"user_usec", offsetof(VsCgView, cpu_user_us)},
    {"system_usec", offsetof(VsCgView, cpu_system_us)},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        unsigned pick = data[0];
        data++, size--;
        VsViewState st;
        memset(&st, 0, sizeof st);
        size_t n = size < sizeof st ? size : sizeof st;
        memcpy(&st, data, n);
        data += n, size -= n;
        /* what the server itself keeps true of its numbers */
        st.cg.cpus[sizeof st.cg.cpus - 1] = '\0';
        st.release[sizeof st.release - 1] = '\0';
        st.version[sizeof st.version - 1] = '\0';
        if (st.cg.n_dev < 0 || st.cg.n_dev > VS_CG_VIEW_DEVS)
                st.cg.n_dev = VS_CG_VIEW_DEVS;
        char *text = fuzz_str(data, size);
        if (pick % (VS_VIEW_N + 3) < VS_VIEW_N) {
                VsViewFile f = (VsViewFile)(pick % (VS_VIEW_N + 3));
                char *out = vs_view_make(f, &st, pick & 0x80 ? NULL : text, st.started_ns + 7,
                                         (time_t)st.lastpid);
                free(out);
        } else if (pick % (VS_VIEW_N + 3) == VS_VIEW_N) {
                struct sysinfo si;
                vs_view_sysinfo(&st, text, st.started_ns, &si);
                vs_view_load_sample(&st, st.running);
        } else if (pick % (VS_VIEW_N + 3) == VS_VIEW_N + 1) {
                vs_cg_view_stat(text, keys, sizeof keys / sizeof keys[0], &st.cg);
        } else {
                VsViewRecord r;
                VsError err = {0};
                if (vs_view_record_parse(text, &r, &err) == 0)
                        vs_view_record_release(&r);
        }
        free(text);
        return 0;
}
