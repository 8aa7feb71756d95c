/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A seccomp deny-list file (security.seccomp = /path), compiled as a start does. */
#include <unistd.h>

#include "../../src/lib/seccomp.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64];
        int fd = fuzz_memfile(data, size, path, sizeof path);
        if (fd < 0)
                return 0;
        VsSeccompSpec spec = {.mode = VS_SECCOMP_FILE, .file = path, .userns = size & 1};
        VsSeccomp *f = NULL;
        VsError err = {0};
        if (vs_seccomp_build(&spec, &f, &err) == 0)
                vs_seccomp_free(f);
        close(fd);
        return 0;
}
