/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vserver set NAME KEY=VALUE...: the input's lines are KEY=VALUE pairs set
 * one after another on a guest, then checked across keys, as set does.
 */
#include "../../src/lib/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static VsGuestConfig g;
        char *text = fuzz_str(data, size), *save = NULL;
        VsError err = {0};
        vs_guest_config_init(&g, "fuzz");
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(l, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                (void)vs_guest_config_set(&g, l, eq + 1, l, &err);
        }
        (void)vs_guest_config_check(&g, "fuzz", &err);
        free(text);
        return 0;
}
