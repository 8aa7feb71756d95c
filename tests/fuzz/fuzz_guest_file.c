/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest file (hand-edited, or written by a panel): parsed, checked and
 * written back.  What parses must write out as a file that parses again to
 * the same text: a guest file vserver saves is one it reads.
 */
#include <stdio.h>

#include "../../src/lib/config.h"
#include "fuzz.h"

static char *written(const VsGuestConfig *g, size_t *len)
{
        char *out = NULL;
        FILE *f = open_memstream(&out, len);
        if (!f)
                abort();
        vs_guest_config_write(g, f);
        fclose(f);
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static VsGuestConfig a, b;
        char *text = fuzz_str(data, size);
        VsError err = {0};
        vs_guest_config_init(&a, "fuzz");
        if (vs_guest_config_parse(&a, text, "fuzz.conf", &err) == 0) {
                size_t n1, n2;
                char *one = written(&a, &n1);
                vs_guest_config_init(&b, "fuzz");
                if (vs_guest_config_parse(&b, one, "written.conf", &err) != 0) {
                        fprintf(stderr, "a saved guest file does not parse: %s\n---\n%s", err.msg,
                                one);
                        abort();
                }
                char *two = written(&b, &n2);
                if (n1 != n2 || memcmp(one, two, n1) != 0) {
                        fprintf(stderr, "saved twice, two files:\n---\n%s---\n%s", one, two);
                        abort();
                }
                free(one);
                free(two);
        }
        free(text);
        return 0;
}
