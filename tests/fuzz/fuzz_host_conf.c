/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host settings (/etc/vserver/vserver.conf), read as vserver reads them. */
#include <unistd.h>

#include "../../src/lib/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64];
        VsHostConfig h;
        VsError err = {0};
        int fd = fuzz_memfile(data, size, path, sizeof path);
        if (fd < 0)
                return 0;
        vs_host_config_init(&h);
        (void)vs_host_config_load(&h, path, &err);
        close(fd);
        return 0;
}
