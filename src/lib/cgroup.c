/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

/* Hosts with many guests have many mounts; a bigger table is cut off, not misread. */
#define MOUNTINFO_MAX (1024 * 1024)

typedef struct Hierarchy {
        char mnt[256]; /* where it is mounted */
        char own[512]; /* our own cgroup in it, relative to the mount */
        bool v2;
} Hierarchy;

bool vs_cgroup_path_valid(const char *path)
{
        if (!path || !*path || strlen(path) > 200)
                return false;
        const char *p = path;
        if (*p == '/')
                p++;
        if (!*p)
                return false;
        while (*p) {
                size_t n = strcspn(p, "/");
                if (n == 0)
                        return false; /* "//" or trailing "/" */
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                for (size_t i = 0; i < n; i++) {
                        char c = p[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                                return false;
                }
                p += n;
                if (*p == '/')
                        p++;
                if (*p == '\0' && p[-1] == '/')
                        return false;
        }
        return true;
}

/* Does the comma list @opts hold every controller of the comma list @ctrls? */
static bool has_all(const char *opts, const char *ctrls)
{
        char want[256];
        snprintf(want, sizeof want, "%s", ctrls);
        for (char *save = NULL, *c = strtok_r(want, ",", &save); c;
             c = strtok_r(NULL, ",", &save)) {
                size_t n = strlen(c);
                const char *o = opts;
                bool found = false;
                while (*o) {
                        size_t m = strcspn(o, ",");
                        if (m == n && strncmp(o, c, n) == 0)
                                found = true;
                        o += m;
                        if (*o == ',')
                                o++;
                }
                if (!found)
                        return false;
        }
        return true;
}

/*
 * Pair each line of /proc/self/cgroup with its mount in mountinfo.  Each
 * hierarchy is taken once (its first mount); hierarchies that are not
 * mounted on this host are skipped.  Both files are read once: this runs on
 * every start.
 */
static int discover(Hierarchy *h, int max, VsError *err)
{
        char cgbuf[4096];
        _cleanup_free_ char *mibuf = malloc(MOUNTINFO_MAX);
        if (!mibuf)
                return vs_error(err, ENOMEM, "read /proc/self/mountinfo");
        ssize_t n1 = vs_read_file_at(AT_FDCWD, "/proc/self/cgroup", cgbuf, sizeof cgbuf);
        if (n1 < 0)
                return vs_error(err, (int)n1, "read /proc/self/cgroup");
        ssize_t n2 = vs_read_file_at(AT_FDCWD, "/proc/self/mountinfo", mibuf, MOUNTINFO_MAX);
        if (n2 < 0)
                return vs_error(err, (int)n2, "read /proc/self/mountinfo");

        int n = 0;
        for (char *save = NULL, *line = strtok_r(cgbuf, "\n", &save); line && n < max;
             line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c1 = *c2 = '\0';
                const char *ctrls = c1 + 1, *own = c2 + 1;
                bool v2 = ctrls[0] == '\0' && streq(line, "0");

                for (const char *m = mibuf; *m;) {
                        const char *eol = strchr(m, '\n');
                        size_t len = eol ? (size_t)(eol - m) : strlen(m);
                        char mline[2048];
                        snprintf(mline, sizeof mline, "%.*s", (int)len, m);
                        m += len + (eol ? 1 : 0);

                        /* id parent maj:min root mountpoint opts... - fstype source superopts */
                        char root[512], mnt[256], fstype[32], superopts[512];
                        char *dash = strstr(mline, " - ");
                        if (!dash || sscanf(mline, "%*s %*s %*s %511s %255s", root, mnt) != 2 ||
                            sscanf(dash + 3, "%31s %*s %511s", fstype, superopts) != 2)
                                continue;
                        if (v2 ? !streq(fstype, "cgroup2")
                               : !streq(fstype, "cgroup") || !has_all(superopts, ctrls))
                                continue;
                        /* our path is relative to the hierarchy root; the mount may show a subtree
                         */
                        const char *rel = own;
                        size_t rl = strlen(root);
                        if (!streq(root, "/") && strncmp(own, root, rl) == 0)
                                rel = own + rl;
                        snprintf(h[n].mnt, sizeof h[n].mnt, "%s", mnt);
                        snprintf(h[n].own, sizeof h[n].own, "%s", streq(rel, "/") ? "" : rel);
                        h[n].v2 = v2;
                        n++;
                        break;
                }
        }
        return n;
}

static int build_paths(VsCgroup *cg, const char *parent, const char *name, VsError *err)
{
        Hierarchy h[VS_CGROUP_MAX_DIRS];

        if (!vs_cgroup_path_valid(parent))
                return vs_error_input(err,
                                      "cgroup parent \"%s\" is not a valid path (letters, "
                                      "digits, . _ - and /)",
                                      parent);
        if (!vs_cgroup_path_valid(name) || strchr(name, '/'))
                return vs_error_input(err, "cgroup name \"%s\" is not valid", name);
        int n = discover(h, VS_CGROUP_MAX_DIRS, err);
        if (n < 0)
                return n;
        if (n == 0)
                return vs_error(err, ENOENT, "no cgroup hierarchy is mounted");
        for (int i = 0; i < n; i++) {
                char *p = NULL;
                const char *sep = parent[0] == '/' ? "" : "/";
                if (asprintf(&p, "%s%s%s%s/%s", h[i].mnt, parent[0] == '/' ? "" : h[i].own, sep,
                             parent, name) < 0)
                        return vs_error(err, ENOMEM, "cgroup path");
                cg->dirs[cg->n].path = p;
                cg->dirs[cg->n].v2 = h[i].v2;
                cg->dirs[cg->n].created = false;
                cg->n++;
        }
        return 0;
}

/* v1 cpuset: a new cgroup has no CPUs and no memory nodes until given its parent's. */
static void cpuset_inherit(const char *dir)
{
        static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
        char parent[1024], val[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (!slash)
                return;
        *slash = '\0';
        _cleanup_close_ int pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0 || dfd < 0)
                return;
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                if (vs_read_file_at(dfd, files[i], val, sizeof val) < 0 || val[0] != '\n')
                        continue; /* missing, or already set */
                if (vs_read_file_at(pfd, files[i], val, sizeof val) > 0)
                        (void)vs_write_file_at(dfd, files[i], val);
        }
}

static int mkdir_parents(char *path, bool cpuset)
{
        for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                int r = mkdir(path, 0755);
                if (r == 0 && cpuset)
                        cpuset_inherit(path);
                *s = '/';
                if (r < 0 && errno != EEXIST)
                        return -errno;
        }
        return 0;
}

int vs_cgroup_create(VsCgroup *cg, const char *parent, const char *name, VsError *err)
{
        int r = build_paths(cg, parent, name, err);
        if (r < 0)
                goto fail;
        for (int i = 0; i < cg->n; i++) {
                char *p = cg->dirs[i].path;
                bool cpuset = strstr(p, "/cpuset") != NULL && !cg->dirs[i].v2;
                /* the parent usually exists: only walk up when it does not */
                r = mkdir(p, 0755) < 0 ? -errno : 0;
                if (r == -ENOENT) {
                        r = mkdir_parents(p, cpuset);
                        if (r < 0) {
                                vs_error(err, r, "create cgroup parents of %s", p);
                                goto fail;
                        }
                        r = mkdir(p, 0755) < 0 ? -errno : 0;
                }
                if (r < 0) {
                        errno = -r;
                        r = errno == EEXIST ? vs_error(err, EEXIST,
                                                       "cgroup %s already exists (is the "
                                                       "context running?)",
                                                       p)
                                            : vs_error(err, errno, "create cgroup %s", p);
                        goto fail;
                }
                cg->dirs[i].created = true;
                if (cpuset)
                        cpuset_inherit(p);
                if (cg->dirs[i].v2) {
                        cg->v2fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (cg->v2fd < 0) {
                                r = vs_error(err, errno, "open cgroup %s", p);
                                goto fail;
                        }
                }
        }
        return 0;
fail:
        vs_cgroup_destroy(cg, NULL);
        return r;
}

int vs_cgroup_open(VsCgroup *cg, const char *parent, const char *name, VsError *err)
{
        int r = build_paths(cg, parent, name, err);
        if (r < 0) {
                vs_cgroup_release(cg);
                return r;
        }
        int found = 0;
        for (int i = 0; i < cg->n; i++) {
                struct stat st;
                if (stat(cg->dirs[i].path, &st) == 0) {
                        cg->dirs[i].created = true;
                        found++;
                        if (cg->dirs[i].v2)
                                cg->v2fd = open(cg->dirs[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                }
        }
        if (!found) {
                vs_cgroup_release(cg);
                return vs_error(err, ENOENT, "cgroup %s/%s", parent, name);
        }
        return 0;
}

static int attach_one(const char *dir, pid_t pid, VsError *err)
{
        char buf[32];
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return vs_error(err, errno, "open cgroup %s", dir);
        snprintf(buf, sizeof buf, "%d", (int)pid);
        int r = vs_write_file_at(dfd, "cgroup.procs", buf);
        if (r < 0)
                return vs_error(err, r, "move process into cgroup %s", dir);
        return 0;
}

int vs_cgroup_attach_v1(const VsCgroup *cg, pid_t pid, VsError *err)
{
        for (int i = 0; i < cg->n; i++) {
                if (cg->dirs[i].v2 || !cg->dirs[i].created)
                        continue;
                int r = attach_one(cg->dirs[i].path, pid, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vs_cgroup_attach(const VsCgroup *cg, pid_t pid, VsError *err)
{
        for (int i = 0; i < cg->n; i++) {
                if (!cg->dirs[i].created)
                        continue;
                int r = attach_one(cg->dirs[i].path, pid, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool dir_populated(const VsCgroup *cg, int i)
{
        char buf[256];
        _cleanup_close_ int dfd = open(cg->dirs[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return false;
        if (cg->dirs[i].v2 && vs_read_file_at(dfd, "cgroup.events", buf, sizeof buf) >= 0)
                return strstr(buf, "populated 1") != NULL;
        /* v1: any pid listed (threads of a dying process included) */
        if (vs_read_file_at(dfd, "cgroup.procs", buf, sizeof buf) > 0)
                return true;
        return false;
}

bool vs_cgroup_populated(const VsCgroup *cg)
{
        for (int i = 0; i < cg->n; i++)
                if (cg->dirs[i].created && dir_populated(cg, i))
                        return true;
        return false;
}

/* v1 has no cgroup.kill: signal each listed pid until the list stays empty. */
static void kill_listed(const char *dir)
{
        char path[1100];
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
                if (pid > 1)
                        kill(pid, SIGKILL);
        fclose(f);
}

int vs_cgroup_kill(const VsCgroup *cg, VsError *err)
{
        bool done = false;
        if (cg->v2fd >= 0) {
                int r = vs_write_file_at(cg->v2fd, "cgroup.kill", "1");
                if (r == 0)
                        done = true;
                else if (r != -ENOENT)
                        return vs_error(err, r, "write cgroup.kill");
        }
        if (!done)
                for (int i = 0; i < cg->n; i++)
                        if (cg->dirs[i].created)
                                kill_listed(cg->dirs[i].path);
        return 0;
}

int vs_cgroup_destroy(VsCgroup *cg, VsError *err)
{
        int r = 0;
        bool killed = false;

        for (int i = cg->n - 1; i >= 0; i--) {
                if (!cg->dirs[i].created)
                        continue;
                /* Dying processes hold the cgroup for a moment: retry, then give up. */
                for (int tries = 0;; tries++) {
                        if (rmdir(cg->dirs[i].path) == 0 || errno == ENOENT) {
                                cg->dirs[i].created = false;
                                break;
                        }
                        if (errno != EBUSY || tries >= 2000) {
                                r = vs_error(err, errno, "remove cgroup %s", cg->dirs[i].path);
                                break;
                        }
                        if (!killed) {
                                vs_cgroup_kill(cg, NULL);
                                killed = true;
                        } else if (tries % 100 == 99) {
                                vs_cgroup_kill(cg, NULL);
                        }
                        struct timespec ts = {0, tries < 20 ? 100000 : 1000000};
                        nanosleep(&ts, NULL);
                }
        }
        vs_cgroup_release(cg);
        return r;
}

void vs_cgroup_release(VsCgroup *cg)
{
        for (int i = 0; i < cg->n; i++)
                free(cg->dirs[i].path);
        cg->n = 0;
        vs_closep(&cg->v2fd);
        cg->v2fd = -EBADF;
}
