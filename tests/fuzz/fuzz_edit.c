/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vserver set --save: a guest file (any text) edited in place with
 * KEY=VALUE lines.  The input is the file, a NUL, then the lines.  An edit
 * that succeeds leaves a file that parses, with each key's new value.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/lib/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char path[64];
        static VsGuestConfig g;
        if (!path[0]) {
                snprintf(path, sizeof path, "/tmp/vs-fuzz-edit-%d.conf", (int)getpid());
        }
        const uint8_t *nul = memchr(data, 0, size);
        if (!nul)
                return 0;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, data, (size_t)(nul - data)) != nul - data)
                abort();
        close(fd);
        char *lines = fuzz_str(nul + 1, size - (size_t)(nul - data) - 1), *save = NULL;
        const char *keys[8], *values[8];
        int n = 0;
        for (char *l = strtok_r(lines, "\n", &save); l && n < 8; l = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(l, '=');
                if (!eq || eq == l)
                        continue;
                *eq = '\0';
                keys[n] = l;
                values[n++] = eq + 1;
        }
        VsError err = {0};
        if (n && vs_guest_config_edit(path, keys, values, n, &err) == 0) {
                vs_guest_config_init(&g, "fuzz");
                if (vs_guest_config_load(&g, path, &err) != 0) {
                        fprintf(stderr, "an edited guest file does not load: %s\n", err.msg);
                        abort();
                }
        }
        free(lines);
        unlink(path);
        return 0;
}
