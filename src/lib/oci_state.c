/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A container's directory under the state root: what the runtime wrote
 * (state.json, a copy of config.json, the cgroup, the limits in force, the
 * exec fifo until start) and what the kernel says now.
 */
#include <dirent.h>
#include <linux/capability.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cgroup.h"
#include "context.h"
#include "net.h"
#include "oci_run.h"
#include "oci_state.h"
#include "util.h"

static const char *const status_names[] = {
    [VS_OCI_CREATING] = "creating", [VS_OCI_CREATED] = "created", [VS_OCI_RUNNING] = "running",
    [VS_OCI_PAUSED] = "paused",     [VS_OCI_STOPPED] = "stopped",
};

const char *vs_oci_status_name(VsOciStatus s)
{
        return s <= VS_OCI_STOPPED ? status_names[s] : "unknown";
}

bool vs_oci_id_valid(const char *id)
{
        size_t n = strlen(id);
        if (n == 0 || n > VS_OCI_ID_MAX || streq(id, ".") || streq(id, ".."))
                return false;
        return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") ==
               n;
}

int vs_oci_write_atomic(int dirfd, const char *name, const char *data, size_t len, VsError *err)
{
        char tmp[64];
        snprintf(tmp, sizeof tmp, ".%s.tmp", name);
        _cleanup_close_ int fd =
            openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return vs_error(err, errno, "write %s", name);
        /*
         * No fsync: the rename makes a crash of ours leave the old file or the
         * new one, never half of one; the state root is a tmpfs (/run) that a
         * power cut empties anyway, as it does every container.
         */
        int r = vs_write_all(fd, data, len);
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0) {
                unlinkat(dirfd, tmp, 0);
                return vs_error(err, r, "write %s", name);
        }
        return 0;
}

int vs_oci_remove_dir(int rootfd, const char *id)
{
        /* what we write there, and what a write cut short leaves (vs_oci_write_atomic) */
        static const char *const files[] = {"exec.fifo",  "state.json",      "config.json",
                                            "limits",     ".state.json.tmp", ".config.json.tmp",
                                            ".limits.tmp"};
        _cleanup_close_ int d = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        for (size_t i = 0; d >= 0 && i < ARRAY_SIZE(files); i++)
                unlinkat(d, files[i], 0);
        return unlinkat(rootfd, id, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* A whole small file of the container's directory, NUL-terminated, allocated. */
char *vs_oci_read(int dirfd, const char *name, size_t max, size_t *ret_len)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return NULL;
        if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
                errno = EFBIG;
                return NULL;
        }
        char *buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return NULL;
        ssize_t n = vs_read_all(fd, buf, (size_t)st.st_size);
        if (n < 0) {
                free(buf);
                return NULL;
        }
        buf[n] = '\0';
        if (ret_len)
                *ret_len = (size_t)n;
        return buf;
}

int vs_oci_open_dir(const char *root, const char *id, VsError *err)
{
        if (!vs_oci_id_valid(id))
                return vs_error_input(err,
                                      "\"%s\" is not a container id (letters, digits, _ + - "
                                      ".)",
                                      id);
        _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int fd = rfd < 0 ? -1 : openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return vs_error(err, ENOENT, "container \"%s\" does not exist", id);
        if (fd < 0)
                return vs_error(err, errno, "open the state of %s", id);
        return fd;
}

static void now_rfc3339(char *buf, size_t size)
{
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        char date[32];
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, size, "%s.%09ldZ", date, ts.tv_nsec);
}

int vs_oci_state_save(int dirfd, const VsOciRecord *rec, VsError *err)
{
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_string(rec->id));
        json_object_object_add(j, "pid", json_object_new_int64(rec->pid));
        json_object_object_add(j, "starttime", json_object_new_uint64(rec->starttime));
        json_object_object_add(j, "bundle", json_object_new_string(rec->bundle));
        json_object_object_add(j, "rootfs", json_object_new_string(rec->rootfs));
        json_object_object_add(j, "created", json_object_new_string(rec->created));
        json_object_object_add(j, "cgroup_parent", json_object_new_string(rec->cgroup_parent));
        json_object_object_add(j, "cgroup_name", json_object_new_string(rec->cgroup_name));
        json_object_object_add(j, "owner", json_object_new_string(rec->owner));
        if (rec->context)
                json_object_object_add(j, "context", json_object_new_int64(rec->context));
        if (rec->net_device[0])
                json_object_object_add(j, "net_device", json_object_new_string(rec->net_device));
        const char *t = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
        int r = vs_oci_write_atomic(dirfd, "state.json", t, strlen(t), err);
        json_object_put(j);
        return r;
}

void vs_oci_record_init(VsOciRecord *rec, const char *id)
{
        *rec = (VsOciRecord){0};
        snprintf(rec->id, sizeof rec->id, "%s", id);
        now_rfc3339(rec->created, sizeof rec->created);
}

static void copy_str(json_object *j, const char *key, char *buf, size_t size)
{
        json_object *v;
        if (json_object_object_get_ex(j, key, &v) && json_object_get_type(v) == json_type_string)
                snprintf(buf, size, "%s", json_object_get_string(v));
}

int vs_oci_state_load(int dirfd, VsOciRecord *rec, VsError *err)
{
        *rec = (VsOciRecord){0};
        _cleanup_free_ char *text = vs_oci_read(dirfd, "state.json", 1 << 20, NULL);
        if (!text)
                return vs_error(err, errno, "read state.json");
        json_object *j = json_tokener_parse(text), *v;
        if (!j || json_object_get_type(j) != json_type_object) {
                json_object_put(j);
                return vs_error(err, EBADMSG, "state.json is damaged");
        }
        copy_str(j, "id", rec->id, sizeof rec->id);
        copy_str(j, "bundle", rec->bundle, sizeof rec->bundle);
        copy_str(j, "rootfs", rec->rootfs, sizeof rec->rootfs);
        copy_str(j, "created", rec->created, sizeof rec->created);
        copy_str(j, "cgroup_parent", rec->cgroup_parent, sizeof rec->cgroup_parent);
        copy_str(j, "cgroup_name", rec->cgroup_name, sizeof rec->cgroup_name);
        copy_str(j, "owner", rec->owner, sizeof rec->owner);
        copy_str(j, "net_device", rec->net_device, sizeof rec->net_device);
        if (json_object_object_get_ex(j, "pid", &v))
                rec->pid = (pid_t)json_object_get_int64(v);
        if (json_object_object_get_ex(j, "starttime", &v))
                rec->starttime = json_object_get_uint64(v);
        if (json_object_object_get_ex(j, "context", &v)) {
                int64_t ctx = json_object_get_int64(v);
                rec->context =
                    ctx >= VS_OCI_CTX_FIRST && ctx <= VS_OCI_CTX_LAST ? (unsigned)ctx : 0;
        }
        json_object_put(j);
        return 0;
}

int vs_oci_pidfd(const VsOciRecord *rec)
{
        if (rec->pid <= 0)
                return -ESRCH;
        int fd = pidfd_open(rec->pid, 0);
        if (fd < 0)
                return -errno;
        /* the pid may have been reused: the start time says it is still ours */
        VsProcStat st;
        if (vs_proc_stat(rec->pid, &st) < 0 || st.starttime != rec->starttime || st.state == 'Z' ||
            st.state == 'X') {
                close(fd);
                return -ESRCH;
        }
        return fd;
}

int vs_oci_cgroup(const VsOciRecord *rec, VsCgroup *cg, VsError *err)
{
        *cg = (VsCgroup)VS_CGROUP_INIT;
        if (!rec->cgroup_name[0])
                return 0;
        return vs_cgroup_open_if(cg, rec->cgroup_parent, rec->cgroup_name, err);
}

VsOciStatus vs_oci_status_of(int dirfd, const VsOciRecord *rec)
{
        _cleanup_close_ int pidfd = vs_oci_pidfd(rec);
        if (pidfd < 0)
                return rec->pid == 0 && faccessat(dirfd, "exec.fifo", F_OK, AT_SYMLINK_NOFOLLOW)
                           ? VS_OCI_CREATING
                           : VS_OCI_STOPPED;
        if (faccessat(dirfd, "exec.fifo", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return VS_OCI_CREATED;
        VsCgroup cg;
        VsOciStatus s = VS_OCI_RUNNING;
        if (vs_oci_cgroup(rec, &cg, NULL) == 0 && cg.n > 0 && vs_cgroup_frozen(&cg) > 0)
                s = VS_OCI_PAUSED;
        vs_cgroup_release(&cg);
        return s;
}

int vs_oci_state(const char *root, const char *id, VsOciState *ret, VsError *err)
{
        _cleanup_close_ int dfd = vs_oci_open_dir(root, id, err);
        if (dfd < 0)
                return dfd;
        VsOciRecord rec;
        int r = vs_oci_state_load(dfd, &rec, err);
        if (r < 0)
                return r;
        *ret = (VsOciState){0};
        snprintf(ret->id, sizeof ret->id, "%s", id);
        ret->status = vs_oci_status_of(dfd, &rec);
        ret->pid = ret->status == VS_OCI_STOPPED ? 0 : rec.pid;
        ret->starttime = rec.starttime;
        snprintf(ret->bundle, sizeof ret->bundle, "%s", rec.bundle);
        snprintf(ret->rootfs, sizeof ret->rootfs, "%s", rec.rootfs);
        snprintf(ret->created, sizeof ret->created, "%s", rec.created);
        snprintf(ret->owner, sizeof ret->owner, "%s", rec.owner);
        return 0;
}

static json_object *state_object(const char *root, const VsOciState *s)
{
        json_object *j = json_object_new_object();
        json_object_object_add(j, "ociVersion", json_object_new_string(VS_OCI_VERSION));
        json_object_object_add(j, "id", json_object_new_string(s->id));
        json_object_object_add(j, "pid", json_object_new_int64(s->pid));
        json_object_object_add(j, "status", json_object_new_string(vs_oci_status_name(s->status)));
        json_object_object_add(j, "bundle", json_object_new_string(s->bundle));
        json_object_object_add(j, "rootfs", json_object_new_string(s->rootfs));
        json_object_object_add(j, "created", json_object_new_string(s->created));
        json_object_object_add(j, "owner", json_object_new_string(s->owner));
        /* the annotations, from the config the container was created with */
        _cleanup_close_ int dfd = root ? vs_oci_open_dir(root, s->id, NULL) : -1;
        _cleanup_free_ char *cfg = dfd >= 0 ? vs_oci_read(dfd, "config.json", 4 << 20, NULL) : NULL;
        json_object *c = cfg ? json_tokener_parse(cfg) : NULL, *a;
        if (c && json_object_object_get_ex(c, "annotations", &a) &&
            json_object_get_type(a) == json_type_object)
                json_object_object_add(j, "annotations", json_object_get(a));
        else
                json_object_object_add(j, "annotations", json_object_new_object());
        json_object_put(c);
        return j;
}

char *vs_oci_state_json(const char *root, const VsOciState *s)
{
        json_object *j = state_object(root, s);
        const char *t = json_object_to_json_string_ext(
            j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *out = t ? strdup(t) : NULL;
        json_object_put(j);
        return out;
}

/* The state a hook reads on stdin: one line of JSON. */
char *vs_oci_hook_state(const char *id, VsOciStatus status, pid_t pid, const char *bundle,
                        const VsOciConfig *c)
{
        VsOciState s = {.status = status, .pid = pid};
        snprintf(s.id, sizeof s.id, "%s", id);
        snprintf(s.bundle, sizeof s.bundle, "%s", bundle);
        json_object *j = state_object(NULL, &s);
        json_object *a = json_object_new_object();
        for (int i = 0; c && i < c->n_annotations; i++)
                json_object_object_add(a, c->annotation_key[i],
                                       json_object_new_string(c->annotation_value[i]));
        json_object_object_add(j, "annotations", a);
        const char *t = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
        char *out = t ? strdup(t) : NULL;
        json_object_put(j);
        return out;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int vs_oci_list(const char *root, char ***ret, VsError *err)
{
        *ret = NULL;
        DIR *d = opendir(root);
        size_t n = 0, cap = 16;
        char **ids = calloc(cap + 1, sizeof *ids);
        if (!ids) {
                if (d)
                        closedir(d);
                return vs_error(err, ENOMEM, "list");
        }
        if (!d) {
                if (errno == ENOENT) {
                        *ret = ids;
                        return 0;
                }
                free(ids);
                return vs_error(err, errno, "open %s", root);
        }
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_type != DT_DIR || !vs_oci_id_valid(e->d_name) || e->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        char **m = realloc(ids, (cap * 2 + 1) * sizeof *ids);
                        if (!m)
                                break;
                        ids = m;
                        cap *= 2;
                }
                ids[n++] = strdup(e->d_name);
                ids[n] = NULL;
        }
        closedir(d);
        qsort(ids, n, sizeof *ids, cmp_str);
        *ret = ids;
        return 0;
}

void vs_oci_isolate_spec(const VsOciConfig *c, const char *root, unsigned ctx, const char *device,
                         const char *guard, char *bpf_dir, size_t size, VsNetSpec *ret)
{
        snprintf(bpf_dir, size, "%s/bpf", root);
        bool own_userns = c->ns[VS_OCI_NS_USER].set;
        *ret = (VsNetSpec){
            .mode = VS_NET_ISOLATE,
            .ctx = ctx,
            .cfg = &c->net,
            .device = device && device[0] ? device : "lo",
            .bpf_dir = bpf_dir,
            .unix_guard = guard && guard[0] ? guard : "/",
            .low_ports = own_userns && (c->process.caps[VS_OCI_CAP_BOUNDING] &
                                        ((VsCaps)1 << CAP_NET_BIND_SERVICE)),
        };
}
