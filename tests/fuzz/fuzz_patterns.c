/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * unify's include/exclude patterns: the first line is a path (a guest's
 * file, any name a guest chose), the others patterns; the valid ones are
 * matched against it, as unify's walk does.
 */
#include "../../src/lib/pattern.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = fuzz_str(data, size), *save = NULL, why[256];
        const char *pats[16];
        int n = 0;
        char *path = strtok_r(text, "\n", &save);
        for (char *l; n < 16 && (l = strtok_r(NULL, "\n", &save));)
                if (vs_pattern_check(l, why, sizeof why) == 0)
                        pats[n++] = l;
        if (path && path[0] == '/') {
                (void)vs_pattern_classify(path, pats, n);
                (void)vs_pattern_excluded(path, false, pats, n);
                (void)vs_pattern_excluded(path, true, pats, n);
                (void)vs_pattern_include_below(path, pats, n);
        }
        free(text);
        return 0;
}
