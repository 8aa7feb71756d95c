/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "paths.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "util.h"

int vs_paths_init(VsPaths *p, const char *root, VsError *err)
{
        *p = (VsPaths){0};
        if (root && *root) {
                if (root[0] != '/')
                        return vs_error_input(err, "root directory \"%s\" must be absolute", root);
                if (strlen(root) >= sizeof p->root)
                        return vs_error_input(err, "root directory \"%s\" is too long", root);
                snprintf(p->root, sizeof p->root, "%s", root);
                size_t n = strlen(p->root);
                while (n > 1 && p->root[n - 1] == '/')
                        p->root[--n] = '\0';
                if (streq(p->root, "/"))
                        p->root[0] = '\0';
        }
        snprintf(p->host_conf, sizeof p->host_conf, "%s/etc/vserver/vserver.conf", p->root);
        snprintf(p->guests_conf, sizeof p->guests_conf, "%s/etc/vserver/guests", p->root);
        snprintf(p->subid, sizeof p->subid, "%s/etc/vserver/subid", p->root);
        snprintf(p->guests, sizeof p->guests, "%s/var/lib/vserver/guests", p->root);
        snprintf(p->store, sizeof p->store, "%s/var/lib/vserver/store", p->root);
        snprintf(p->run, sizeof p->run, "%s/run/vserver", p->root);
        snprintf(p->log, sizeof p->log, "%s/var/log/vserver", p->root);
        return 0;
}

const char *vs_paths_run(const VsPaths *p, VsRunFile f, const char *arg, char *buf, size_t size)
{
        /* before the argument, after it (NULL: the file takes none) */
        static const char *const names[][2] = {
            [VS_RUN_GUEST_LOCK] = {"", ".lock"},
            [VS_RUN_GUEST_STARTED] = {"", ".started"},
            [VS_RUN_CONTEXT_LOCK] = {"context.lock", NULL},
            [VS_RUN_CONTEXT_RESERVED] = {"context.", ""},
            [VS_RUN_BPF] = {"bpf", NULL},
            [VS_RUN_UNIFY_LOCK] = {"unify.lock", NULL},
            [VS_RUN_UNIFY_PENDING] = {"unify.pending", NULL},
            [VS_RUN_UNIFY_FROZEN] = {"unify.frozen", NULL},
        };
        bool takes = names[f][1] != NULL;
        snprintf(buf, size, "%s/%s%s%s", p->run, names[f][0], takes && arg ? arg : "",
                 takes ? names[f][1] : "");
        return buf;
}

int vs_mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
                return -ENAMETOOLONG;
        for (char *s = strchr(buf + 1, '/');; s = strchr(s + 1, '/')) {
                if (s)
                        *s = '\0';
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                if (!s)
                        break;
                *s = '/';
        }
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int vs_paths_ensure(const VsPaths *p, VsError *err)
{
        const char *const dirs[] = {p->guests_conf, p->guests, p->run, p->log};
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                int r = vs_mkdir_p(dirs[i], 0755);
                if (r < 0)
                        return vs_error(err, r, "create %s", dirs[i]);
        }
        /* the guests' trees are nobody else's business */
        if (chmod(p->guests, 0700) < 0)
                return vs_error(err, errno, "chmod %s", p->guests);
        return 0;
}

bool vs_guest_name_valid(const char *name)
{
        size_t n = strlen(name);
        if (n == 0 || n > 48)
                return false;
        if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
              (name[0] >= '0' && name[0] <= '9')))
                return false;
        for (const char *c = name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
                        return false;
        return true;
}

int vs_lock_in(const char *dir, const char *path, VsError *err)
{
        int r = vs_mkdir_p(dir, 0755);
        if (r < 0)
                return vs_error(err, -r, "create %s", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                r = vs_error(err, errno, "lock %s", path);
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}
