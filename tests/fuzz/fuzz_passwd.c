/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A guest's /etc/passwd, as enter reads it for root's login shell. */
#include "../../src/lib/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = fuzz_str(data, size), shell[256];
        if (vs_passwd_root_shell(s, shell, sizeof shell)) {
                if (shell[0] != '/')
                        abort();
                for (const char *c = shell; *c; c++)
                        if (*c <= ' ' || *c == 0x7f)
                                abort();
        }
        free(s);
        return 0;
}
