/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the libFuzzer targets share: the input as a C string. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* @data as a NUL-terminated string (cut at the first NUL), malloc'd. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/* @data in a memory file; its /proc/self/fd path in @path.  The fd, or -1. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t psize);
