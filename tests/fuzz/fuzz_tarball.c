/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tarball given to build --template, extracted (libarchive) into a
 * scratch root and removed again.  Nothing may land outside the scratch
 * directory: a sentinel beside it must stay alone.
 */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/lib/tree.h"
#include "fuzz.h"

static char top[64], root[96];

static int entries(const char *dir)
{
        DIR *d = opendir(dir);
        int n = 0;
        if (!d)
                return -1;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.' || (de->d_name[1] && de->d_name[1] != '.');
        closedir(d);
        return n;
}

static void cleanup(void)
{
        vs_tree_remove(top, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64];
        if (!top[0]) {
                snprintf(top, sizeof top, "/tmp/vs-fuzz-tar-%d", (int)getpid());
                snprintf(root, sizeof root, "%s/root", top);
                if (mkdir(top, 0700) < 0)
                        abort();
                atexit(cleanup);
        }
        int fd = fuzz_memfile(data, size, path, sizeof path);
        if (fd < 0)
                return 0;
        if (mkdir(root, 0755) < 0)
                abort();
        VsError err = {0};
        (void)vs_tree_extract(path, root, &err);
        close(fd);
        if (entries(top) != 1) {
                fprintf(stderr, "the tarball wrote beside the root it was given\n");
                abort();
        }
        if (vs_tree_remove(root, &err) < 0) {
                fprintf(stderr, "remove the scratch root: %s\n", err.msg);
                abort();
        }
        return 0;
}
