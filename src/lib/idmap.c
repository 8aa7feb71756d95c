/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "idmap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "paths.h"
#include "util.h"

/*
 * The host's installations: VS_HOST_RUN/subid.d holds a symbolic link to
 * each record that ever handed out a range since boot (named by the hash
 * of its path), so an allocation keeps clear of every installation's
 * ranges, not only its own record's.  A start registers its record too
 * (one symlinkat), so after a reboot the installations whose guests run
 * are known again; one that is not is caught at its start, which refuses
 * ids a running guest of any installation holds (ctxid.c).
 */
#define HOST_RECORDS VS_HOST_RUN "/subid.d"
#define HOST_LOCK    VS_HOST_RUN "/subid.lock" /* one allocation at a time, host-wide */

#define MAX_ENTRIES 65536

typedef struct Entry {
        char name[80];
        unsigned start, count;
} Entry;

typedef struct Record {
        Entry *e;
        int n;
} Record;

int vs_idmap_parse_pool(const char *s, unsigned *ret_first, unsigned *ret_last)
{
        char buf[64];
        unsigned long long a, b;
        if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf)
                return -EINVAL;
        char *dash = strchr(buf, '-');
        if (!dash)
                return -EINVAL;
        *dash = '\0';
        if (vs_parse_u64(buf, &a) < 0 || vs_parse_u64(dash + 1, &b) < 0)
                return -EINVAL;
        /* 0-65535 are the host's own; ids at or past 2^32-1 are not ids */
        if (a < VS_IDMAP_COUNT || b >= 0xffffffffULL || a > b || b - a + 1 < VS_IDMAP_COUNT)
                return -EINVAL;
        *ret_first = (unsigned)a;
        *ret_last = (unsigned)b;
        return 0;
}

/* One "NAME:START:COUNT" line; false for comments, blanks and anything malformed. */
static bool parse_line(char *line, Entry *e)
{
        line[strcspn(line, "\r\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (line[0] == '#' || !c2 || c1 == line || (size_t)(c1 - line) >= sizeof e->name)
                return false;
        *c1 = *c2 = '\0';
        unsigned long long s, n;
        if (vs_parse_u64(c1 + 1, &s) < 0 || vs_parse_u64(c2 + 1, &n) < 0 || s > 0xffffffffULL ||
            n == 0 || n > 0xffffffffULL - s)
                return false;
        snprintf(e->name, sizeof e->name, "%s", line);
        e->start = (unsigned)s;
        e->count = (unsigned)n;
        return true;
}

static int record_read(FILE *f, Record *rec)
{
        char line[256];
        rec->e = NULL;
        rec->n = 0;
        int cap = 0;
        while (fgets(line, sizeof line, f)) {
                Entry e;
                if (!parse_line(line, &e))
                        continue;
                if (rec->n == MAX_ENTRIES)
                        return -E2BIG;
                if (rec->n == cap) {
                        cap = cap ? cap * 2 : 16;
                        Entry *p = realloc(rec->e, (size_t)cap * sizeof *p);
                        if (!p)
                                return -ENOMEM;
                        rec->e = p;
                }
                rec->e[rec->n++] = e;
        }
        return ferror(f) ? -EIO : 0;
}

static bool overlaps(unsigned a, unsigned an, unsigned b, unsigned bn)
{
        return (unsigned long long)a < (unsigned long long)b + bn &&
               (unsigned long long)b < (unsigned long long)a + an;
}

bool vs_idmap_clear_of(const char *path, unsigned start, unsigned count)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return true;
        char line[256];
        bool clear = true;
        while (clear && fgets(line, sizeof line, f)) {
                Entry e;
                if (parse_line(line, &e) && overlaps(start, count, e.start, e.count))
                        clear = false;
        }
        fclose(f);
        return clear;
}

/*
 * Lock the record (a lock file beside it: the record itself is replaced by
 * rename) and read it; a missing record reads empty.  Returns the lock fd.
 */
static int record_load(const char *path, Record *rec, VsError *err)
{
        char lock[PATH_MAX];
        rec->e = NULL;
        rec->n = 0;
        if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock)
                return vs_error(err, ENAMETOOLONG, "%s", path);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return vs_error(err, errno, "open %s", lock);
        if (flock(fd, LOCK_EX) < 0) {
                int e = errno;
                close(fd);
                return vs_error(err, e, "lock %s", lock);
        }
        FILE *f = fopen(path, "re");
        if (!f && errno != ENOENT) {
                int e = errno;
                close(fd);
                return vs_error(err, e, "open %s", path);
        }
        int r = f ? record_read(f, rec) : 0;
        if (f)
                fclose(f);
        if (r < 0) {
                free(rec->e);
                rec->e = NULL;
                close(fd);
                return vs_error(err, r, "read %s", path);
        }
        return fd;
}

/* Replace the record atomically, under its lock. */
static int record_write(const char *path, const Record *rec, VsError *err)
{
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
                return vs_error(err, ENAMETOOLONG, "%s", path);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return vs_error(err, errno, "create %s", tmp);
        fprintf(f, "# guest id ranges (NAME:START:COUNT, as /etc/subuid): written by vserver\n");
        for (int i = 0; i < rec->n; i++)
                fprintf(f, "%s:%u:%u\n", rec->e[i].name, rec->e[i].start, rec->e[i].count);
        int r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return vs_error(err, r, "write %s", path);
        }
        return 0;
}

static const Entry *find(const Record *rec, const char *name)
{
        for (int i = 0; i < rec->n; i++)
                if (streq(rec->e[i].name, name))
                        return &rec->e[i];
        return NULL;
}

/*
 * @name's line only: every start of an own-userns guest looks its range up,
 * and the record has a line per guest.  No lock: the record is only ever
 * replaced whole (rename), so a reader sees the old one or the new.
 */
int vs_idmap_lookup(const char *path, const char *name, VsIdRange *ret, VsError *err)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : vs_error(err, errno, "open %s", path);
        size_t len = strlen(name);
        char line[256];
        int found = 0;
        while (!found && fgets(line, sizeof line, f)) {
                Entry e;
                if (strncmp(line, name, len) == 0 && line[len] == ':' && parse_line(line, &e) &&
                    streq(e.name, name)) {
                        *ret = (VsIdRange){.start = e.start, .count = e.count};
                        found = 1;
                }
        }
        if (!found && ferror(f))
                found = vs_error(err, EIO, "read %s", path);
        fclose(f);
        return found;
}

void vs_idmap_register(const char *path)
{
        char link[sizeof HOST_RECORDS + 24];
        snprintf(link, sizeof link, HOST_RECORDS "/%016llx",
                 (unsigned long long)XXH3_64bits(path, strlen(path)));
        if (symlink(path, link) == 0 || errno != ENOENT)
                return; /* made, or there (EEXIST) */
        if (vs_mkdir_p(HOST_RECORDS, 0755) == 0)
                (void)!symlink(path, link);
}

/* The entries of every other registered record (root's regular files only), appended to @rec. */
static void others_load(const char *own, Record *rec)
{
        DIR *d = opendir(HOST_RECORDS);
        if (!d)
                return;
        struct dirent *de;
        int cap = rec->n;
        while ((de = readdir(d))) {
                char target[PATH_MAX];
                ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                if (streq(target, own))
                        continue;
                FILE *f = fopen(target, "re");
                struct stat st;
                if (!f && errno == ENOENT)
                        (void)unlinkat(dirfd(d), de->d_name, 0); /* an installation gone */
                if (!f)
                        continue;
                if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0) {
                        Record other;
                        (void)record_read(f, &other);
                        for (int i = 0; i < other.n && rec->n < MAX_ENTRIES; i++) {
                                if (rec->n == cap) {
                                        cap = cap ? cap * 2 : 16;
                                        Entry *p = realloc(rec->e, (size_t)cap * sizeof *p);
                                        if (!p)
                                                break;
                                        rec->e = p;
                                }
                                rec->e[rec->n++] = other.e[i];
                        }
                        free(other.e);
                }
                fclose(f);
        }
        closedir(d);
}

static bool block_free(const Record *rec, unsigned start)
{
        for (int i = 0; i < rec->n; i++)
                if (overlaps(start, VS_IDMAP_COUNT, rec->e[i].start, rec->e[i].count))
                        return false;
        return vs_idmap_clear_of("/etc/subuid", start, VS_IDMAP_COUNT) &&
               vs_idmap_clear_of("/etc/subgid", start, VS_IDMAP_COUNT);
}

int vs_idmap_allocate(const char *path, const char *name, unsigned first, unsigned last,
                      VsIdRange *ret, VsError *err)
{
        /* most calls find the range the guest already has: no lock, no whole parse */
        vs_idmap_register(path);
        int r = vs_idmap_lookup(path, name, ret, err);
        if (r != 0)
                return r < 0 ? r : 0;
        _cleanup_close_ int host = vs_lock_in(VS_HOST_RUN, HOST_LOCK, err);
        if (host < 0)
                return host;
        Record rec, taken;
        int lock = record_load(path, &rec, err);
        if (lock < 0)
                return lock;
        const Entry *e = find(&rec, name);
        if (e) {
                *ret = (VsIdRange){.start = e->start, .count = e->count};
                goto out;
        }
        /* the other installations' ranges too: their guests' host ids are not ours to share */
        taken.n = rec.n;
        taken.e = rec.n ? malloc((size_t)rec.n * sizeof *taken.e) : NULL;
        if (rec.n && !taken.e) {
                r = vs_error(err, ENOMEM, "allocate an id range");
                goto out;
        }
        if (rec.n)
                memcpy(taken.e, rec.e, (size_t)rec.n * sizeof *taken.e);
        others_load(path, &taken);
        /* aligned blocks: a host id tells its guest at a glance (id / 65536) */
        unsigned long long s =
            ((unsigned long long)first + VS_IDMAP_COUNT - 1) / VS_IDMAP_COUNT * VS_IDMAP_COUNT;
        for (; s + VS_IDMAP_COUNT - 1 <= last; s += VS_IDMAP_COUNT)
                if (block_free(&taken, (unsigned)s))
                        break;
        free(taken.e);
        if (s + VS_IDMAP_COUNT - 1 > last) {
                r = vs_error(err, ENOSPC,
                             "no free range of %u ids left in the pool %u-%u (widen the host "
                             "setting userns-ids, or delete guests)",
                             VS_IDMAP_COUNT, first, last);
                goto out;
        }
        Entry *p = realloc(rec.e, (size_t)(rec.n + 1) * sizeof *p);
        if (!p) {
                r = vs_error(err, ENOMEM, "allocate an id range");
                goto out;
        }
        rec.e = p;
        Entry *n = &rec.e[rec.n++];
        snprintf(n->name, sizeof n->name, "%s", name);
        n->start = (unsigned)s;
        n->count = VS_IDMAP_COUNT;
        r = record_write(path, &rec, err);
        if (r == 0)
                *ret = (VsIdRange){.start = n->start, .count = n->count};
out:
        free(rec.e);
        close(lock);
        return r;
}

int vs_idmap_release(const char *path, const char *name, bool retire, VsError *err)
{
        Record rec;
        int lock = record_load(path, &rec, err);
        if (lock < 0)
                return lock;
        int r = 0, k = 0;
        bool found = false;
        for (int i = 0; i < rec.n; i++) {
                if (!streq(rec.e[i].name, name)) {
                        rec.e[k++] = rec.e[i];
                        continue;
                }
                found = true;
                if (retire) {
                        snprintf(rec.e[k].name, sizeof rec.e[k].name, "%.60s~deleted", name);
                        rec.e[k].start = rec.e[i].start;
                        rec.e[k].count = rec.e[i].count;
                        k++;
                }
        }
        rec.n = k;
        if (found)
                r = record_write(path, &rec, err);
        free(rec.e);
        close(lock);
        return r;
}

int vs_idmap_write(pid_t pid, VsIdRange range, VsError *err)
{
        char path[64], map[64];
        snprintf(map, sizeof map, "0 %u %u\n", range.start, range.count);
        for (const char *m = "uid_map\0gid_map\0"; *m; m += strlen(m) + 1) {
                snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, m);
                int r = vs_write_file_at(AT_FDCWD, path, map);
                if (r < 0)
                        return vs_error(err, r, "write the guest's %s", m);
        }
        return 0;
}
