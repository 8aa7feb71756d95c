/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the runtime does to a container after create: start, kill, delete,
 * pause, ps, update, stats, exec; and the pieces create hands the child (its
 * idmapped trees) and the device cgroup.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <json-c/json.h>
#include <linux/bpf.h>

#include "caps.h"
#include "ctxid.h"
#include "net.h"
#include "viewd.h"
#include "context.h"
#include "oci_int.h"
#include "oci_run.h"
#include "oci_state.h"
#include "seccomp.h"
#include "syscalls.h"
#include "util.h"

/* ---- create's helpers ---- */

int vs_oci_send_trees(const VsOciConfig *c, const char *bundle, pid_t pid, int sock, VsError *err)
{
        int fds[VS_MAX_PASS_FDS] = {0}, n = 0, r = 0;
        _cleanup_close_ int userns = -EBADF;
        for (int i = 0; i < c->n_mounts; i++) {
                const VsOciMount *m = &c->mounts[i];
                if (!m->idmap)
                        continue;
                if (userns < 0) {
                        char path[64];
                        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
                        userns = open(path, O_RDONLY | O_CLOEXEC);
                        if (userns < 0) {
                                r = vs_error(err, errno, "open the container's user namespace");
                                break;
                        }
                }
                if (n == VS_MAX_PASS_FDS) {
                        r = vs_error_input(err, "config.json: more than %d idmap mounts",
                                           VS_MAX_PASS_FDS);
                        break;
                }
                char src[8200];
                snprintf(src, sizeof src, "%s%s%s", m->source[0] == '/' ? "" : bundle,
                         m->source[0] == '/' ? "" : "/", m->source);
                fds[n] = open_tree(AT_FDCWD, src,
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                                       (m->recursive ? AT_RECURSIVE : 0));
                if (fds[n] < 0) {
                        r = vs_error(err, errno, "bind %s: open the source", m->source);
                        break;
                }
                n++;
                struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned)userns};
                if (mount_setattr(fds[n - 1], "", AT_EMPTY_PATH | (m->recursive ? AT_RECURSIVE : 0),
                                  &a, sizeof a) < 0) {
                        r = vs_error(err, errno,
                                     "bind %s: idmap it (its filesystem may have no idmapped "
                                     "mounts)",
                                     m->source);
                        break;
                }
        }
        if (r == 0) {
                r = n ? vs_send_fds(sock, "g", 1, fds, n) : (write(sock, "g", 1) == 1 ? 0 : -errno);
                if (r < 0)
                        r = vs_error(err, r, "start the container");
        }
        for (int i = 0; i < n; i++)
                close(fds[i]);
        return r;
}

/* What every container may use whatever its rules say (runc's list). */
static const VsOciDevRule default_rules[] = {
    {true, 'c', 1, 3, "rwm"}, {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},
    {true, 'c', 1, 8, "rwm"}, {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},
    {true, 'c', 5, 1, "rwm"}, {true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"},
};

/* The whole rule list: the config's (or deny-all and linux.devices), then the defaults. */
static int rules_of(const VsOciConfig *c, VsOciDevRule *out, int max)
{
        int n = 0;
        if (c->n_dev_rules) {
                for (int i = 0; i < c->n_dev_rules && n < max; i++)
                        out[n++] = c->dev_rules[i];
        } else {
                /* no rules given: fail closed, the devices it lists and the defaults only */
                out[n++] = (VsOciDevRule){false, 'a', -1, -1, "rwm"};
                for (int i = 0; i < c->n_devices && n < max; i++)
                        if (c->devices[i].type != 'p')
                                out[n++] = (VsOciDevRule){true, c->devices[i].type,
                                                          (long)c->devices[i].major,
                                                          (long)c->devices[i].minor, "rwm"};
        }
        for (size_t i = 0; i < ARRAY_SIZE(default_rules) && n < max; i++)
                out[n++] = default_rules[i];
        return n;
}

static int v1_rule(int dfd, const VsOciDevRule *d, VsError *err)
{
        char line[64], maj[16] = "*", min[16] = "*";
        if (d->type == 'a')
                snprintf(line, sizeof line, "a");
        else {
                if (d->major >= 0)
                        snprintf(maj, sizeof maj, "%ld", d->major);
                if (d->minor >= 0)
                        snprintf(min, sizeof min, "%ld", d->minor);
                snprintf(line, sizeof line, "%c %s:%s %s", d->type, maj, min, d->access);
        }
        int r = vs_write_file_at(dfd, d->allow ? "devices.allow" : "devices.deny", line);
        return r < 0 ? vs_error(err, r, "device cgroup: %s %s", d->allow ? "allow" : "deny", line)
                     : 0;
}

/* ---- the cgroup2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program, last match wins ---- */

#define INSN(c, d, s, o, i)                                                                        \
        ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o)    INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV_REG(d, s)     INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i)     INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i)     INSN(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, i)
#define RSH_IMM(d, i)     INSN(BPF_ALU | BPF_RSH | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o)  INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define JSET_IMM(d, i, o) INSN(BPF_JMP | BPF_JSET | BPF_K, d, 0, o, i)
#define EXIT()            INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int access_bits(const char *a)
{
        return (strchr(a, 'm') ? BPF_DEVCG_ACC_MKNOD : 0) |
               (strchr(a, 'r') ? BPF_DEVCG_ACC_READ : 0) |
               (strchr(a, 'w') ? BPF_DEVCG_ACC_WRITE : 0);
}

static int v2_filter(int cgfd, const VsOciDevRule *rules, int n, VsError *err)
{
        struct bpf_insn insns[8 + 10 * (VS_OCI_MAX_DEV_RULE + 16)];
        int k = 0;
        /* r2 = type, r3 = access, r4 = major, r5 = minor */
        insns[k++] = LDX_W(2, 1, 0);
        insns[k++] = MOV_REG(3, 2);
        insns[k++] = AND_IMM(2, 0xffff);
        insns[k++] = RSH_IMM(3, 16);
        insns[k++] = LDX_W(4, 1, 4);
        insns[k++] = LDX_W(5, 1, 8);
        for (int i = n - 1; i >= 0; i--) {
                const VsOciDevRule *d = &rules[i];
                struct bpf_insn block[8];
                int b = 0;
                if (d->type != 'a')
                        block[b++] = JNE_IMM(
                            2, d->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0);
                /* an access the rule does not name: not this rule's */
                block[b++] = JSET_IMM(3, ~access_bits(d->access) & 7, 0);
                if (d->type != 'a' && d->major >= 0)
                        block[b++] = JNE_IMM(4, (int)d->major, 0);
                if (d->type != 'a' && d->minor >= 0)
                        block[b++] = JNE_IMM(5, (int)d->minor, 0);
                block[b++] = MOV_IMM(0, d->allow ? 1 : 0);
                block[b++] = EXIT();
                /* every jump skips to the end of the block */
                for (int j = 0; j < b - 2; j++)
                        block[j].off = (short)(b - j - 1);
                memcpy(insns + k, block, sizeof *block * (size_t)b);
                k += b;
        }
        insns[k++] = MOV_IMM(0, 0);
        insns[k++] = EXIT();
        char log[4096] = "";
        struct bpf_prog_load_opts opts = {
            .sz = sizeof opts, .log_buf = log, .log_size = sizeof log, .log_level = 0};
        _cleanup_close_ int prog = bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, "vs_devices", "GPL",
                                                 insns, (size_t)k, &opts);
        if (prog < 0)
                return vs_error(err, -prog, "device cgroup: load the BPF device filter%s%s",
                                log[0] ? ": " : "", log);
        if (bpf_prog_attach(prog, cgfd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) < 0)
                return vs_error(err, errno, "device cgroup: attach the BPF device filter");
        return 0;
}

int vs_oci_devices_apply(const VsOciConfig *c, const VsCgroup *cg, VsError *err)
{
        VsOciDevRule rules[VS_OCI_MAX_DEV_RULE + VS_OCI_MAX_DEVICES + 16];
        int n = rules_of(c, rules, (int)ARRAY_SIZE(rules));
        bool v2 = false;
        _cleanup_close_ int cfd = vs_cgroup_controller_open(cg, "devices", &v2);
        /*
         * v1 refuses a deny-all where there are children: the rules go where
         * the processes are, the leaf if there is one (not in a controller
         * hierarchy, which the container only reads)
         */
        _cleanup_close_ int dfd =
            cfd >= 0 && !v2 ? openat(cfd, VS_CGROUP_LEAF, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        if (cfd >= 0 && !v2 && dfd < 0 && errno == ENOENT)
                dfd = openat(cfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cfd >= 0 && !v2 && dfd < 0)
                return vs_error(err, errno, "device cgroup: open the container's cgroup");
        if (dfd >= 0) {
                for (int i = 0; i < n; i++) {
                        int r = v1_rule(dfd, &rules[i], err);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        const char *dir = vs_cgroup_v2_path(cg);
        _cleanup_close_ int cgfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (cgfd < 0)
                return vs_error(err, ENOENT,
                                "device cgroup: no devices controller and no cgroup2 "
                                "tree to filter devices in");
        return v2_filter(cgfd, rules, n, err);
}

/* ---- start, kill, delete, pause ---- */

/* The container's directory and what state.json says; with @lock, held exclusively. */
static int open_record(const char *root, const char *id, bool lock, VsOciRecord *rec, VsError *err)
{
        int dfd = vs_oci_open_dir(root, id, err);
        if (dfd < 0)
                return dfd;
        int r = lock && flock(dfd, LOCK_EX) < 0 ? vs_error(err, errno, "lock the state of %s", id)
                                                : vs_oci_state_load(dfd, rec, err);
        if (r < 0) {
                close(dfd);
                return r;
        }
        return dfd;
}

static int load_config(int dfd, VsOciConfig *c, VsError *err)
{
        size_t len = 0;
        _cleanup_free_ char *text = vs_oci_read(dfd, "config.json", 4 << 20, &len);
        if (!text)
                return vs_error(err, errno, "read the container's config.json");
        return vs_oci_config_parse(text, len, c, err);
}

int vs_oci_start(const char *root, const char *id, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = open_record(root, id, true, &rec, err);
        if (dfd < 0)
                return dfd;
        VsOciStatus s = vs_oci_status_of(dfd, &rec);
        if (s != VS_OCI_CREATED)
                return vs_error(err, EINVAL, "cannot start container %s: it is %s, not created", id,
                                vs_oci_status_name(s));
        _cleanup_close_ int fifo = openat(dfd, "exec.fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fifo < 0)
                return vs_error(err, errno == ENXIO ? ESRCH : errno,
                                "cannot start container %s: its process is gone", id);
        if (write(fifo, "s", 1) != 1)
                return vs_error(err, errno, "start %s", id);
        unlinkat(dfd, "exec.fifo", 0);
        VsOciConfig *c = calloc(1, sizeof *c);
        if (c && load_config(dfd, c, NULL) == 0) {
                _cleanup_free_ char *state =
                    vs_oci_hook_state(id, VS_OCI_RUNNING, rec.pid, rec.bundle, c);
                /* the spec: a poststart failure does not stop the container */
                if (state && c->n_hooks[VS_OCI_HOOK_POSTSTART])
                        vs_oci_run_hooks(c, VS_OCI_HOOK_POSTSTART, state, false, NULL);
                vs_oci_config_free(c);
        }
        free(c);
        return 0;
}

int vs_oci_kill(const char *root, const char *id, int sig, bool all, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = open_record(root, id, false, &rec, err);
        if (dfd < 0)
                return dfd;
        int r;
        if (all) {
                VsCgroup cg;
                r = vs_oci_cgroup(&rec, &cg, err);
                if (r < 0)
                        return r;
                if (sig == SIGKILL && cg.n)
                        r = vs_cgroup_kill(&cg, err);
                else if (cg.n)
                        r = vs_oci_signal_all(&cg, sig, err);
                vs_cgroup_release(&cg);
                return r;
        }
        _cleanup_close_ int pidfd = vs_oci_pidfd(&rec);
        if (pidfd < 0)
                return vs_error(err, ESRCH, "container %s is not running", id);
        if (pidfd_send_signal(pidfd, sig, NULL, 0) < 0)
                return vs_error(err, errno, "signal %d to container %s", sig, id);
        return 0;
}

static int send_sig(pid_t pid, void *data)
{
        kill(pid, *(int *)data);
        return 0;
}

int vs_oci_signal_all(const VsCgroup *cg, int sig, VsError *err)
{
        /* a paused container takes its signals once thawed; SIGKILL goes through the freeze */
        int r = vs_cgroup_foreach_pid(cg, send_sig, &sig);
        return r < 0 ? vs_error(err, r, "signal the container's processes") : 0;
}

/* Wait (bounded) until nothing is left in the cgroup. */
static void wait_empty(const VsCgroup *cg)
{
        for (int i = 0; i < 500 && vs_cgroup_populated(cg); i++)
                usleep(10000);
}

int vs_oci_delete(const char *root, const char *id, bool force, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = vs_oci_open_dir(root, id, err);
        if (dfd < 0)
                return dfd;
        int r = vs_oci_state_load(dfd, &rec, err);
        if (r < 0 && !force)
                return r;
        if (r < 0) /* a create killed before its state was written: whatever is there goes */
                rec = (VsOciRecord){0};
        VsOciStatus s = vs_oci_status_of(dfd, &rec);
        if (s != VS_OCI_STOPPED && s != VS_OCI_CREATED && s != VS_OCI_CREATING && !force)
                return vs_error(err, EBUSY,
                                "cannot delete container %s that is not stopped: %s (stop it, or "
                                "delete --force)",
                                id, vs_oci_status_name(s));
        if (s == VS_OCI_CREATING && !force) {
                /* its create may still be running: it holds the lock */
                if (flock(dfd, LOCK_EX | LOCK_NB) < 0)
                        return vs_error(err, EBUSY, "container %s is being created", id);
        }
        /* its process first, by pidfd (if its cgroup went another way), then the cgroup */
        _cleanup_close_ int pidfd = vs_oci_pidfd(&rec);
        if (pidfd >= 0)
                pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
        VsCgroup cg = VS_CGROUP_INIT;
        if (vs_oci_cgroup(&rec, &cg, NULL) == 0 && cg.n) {
                /* what is left (a process that ended is gone already: no freeze and kill) */
                if (vs_cgroup_populated(&cg)) {
                        vs_cgroup_freeze(&cg, false, NULL);
                        vs_cgroup_kill(&cg, NULL);
                        wait_empty(&cg);
                }
                r = vs_cgroup_destroy(&cg, err);
                vs_cgroup_release(&cg);
                if (r < 0)
                        return r;
        }
        VsOciConfig *c = calloc(1, sizeof *c);
        bool have_config = c && load_config(dfd, c, NULL) == 0;
        if (rec.context) {
                char owner[VS_OCI_ID_MAX + 8], bpf_dir[4200];
                snprintf(owner, sizeof owner, "oci:%s", id);
                if (have_config && c->isolate) {
                        VsNetSpec net;
                        vs_oci_isolate_spec(c, root, rec.context, rec.net_device, NULL, bpf_dir,
                                            sizeof bpf_dir, &net);
                        (void)vs_net_isolate_stop(&net, NULL);
                }
                vs_views_unregister(rec.context);
                vs_ctxid_release(rec.context, owner, root);
        }
        if (have_config) {
                _cleanup_free_ char *state =
                    vs_oci_hook_state(id, VS_OCI_STOPPED, 0, rec.bundle, c);
                if (state)
                        vs_oci_run_hooks(c, VS_OCI_HOOK_POSTSTOP, state, false, NULL);
                vs_oci_config_free(c);
        }
        free(c);
        _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0 || vs_oci_remove_dir(rfd, id) < 0)
                return vs_error(err, errno, "remove the state of %s", id);
        return 0;
}

int vs_oci_pause(const char *root, const char *id, bool pause, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = open_record(root, id, true, &rec, err);
        if (dfd < 0)
                return dfd;
        VsOciStatus s = vs_oci_status_of(dfd, &rec);
        if (pause && s != VS_OCI_RUNNING && s != VS_OCI_CREATED)
                return vs_error(err, EINVAL, "container %s is %s, not running", id,
                                vs_oci_status_name(s));
        if (!pause && s != VS_OCI_PAUSED)
                return vs_error(err, EINVAL, "container %s is not paused (%s)", id,
                                vs_oci_status_name(s));
        VsCgroup cg;
        int r = vs_oci_cgroup(&rec, &cg, err);
        if (r == 0 && !cg.n)
                r = vs_error(err, ENOENT, "container %s has no cgroup", id);
        if (r == 0)
                r = vs_cgroup_freeze(&cg, pause, err);
        vs_cgroup_release(&cg);
        return r;
}

typedef struct PidList {
        pid_t *v;
        int n, cap;
} PidList;

static int add_pid(pid_t pid, void *data)
{
        PidList *l = data;
        if (l->n == l->cap) {
                int cap = l->cap ? l->cap * 2 : 64;
                pid_t *v = realloc(l->v, sizeof *v * (size_t)cap);
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = pid;
        return 0;
}

static int cmp_pid(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

int vs_oci_pids(const char *root, const char *id, pid_t **ret, int *ret_n, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = open_record(root, id, false, &rec, err);
        if (dfd < 0)
                return dfd;
        int r;
        VsCgroup cg;
        PidList l = {0};
        r = vs_oci_cgroup(&rec, &cg, err);
        if (r == 0 && cg.n)
                r = vs_cgroup_foreach_pid(&cg, add_pid, &l);
        vs_cgroup_release(&cg);
        if (r < 0) {
                free(l.v);
                return vs_error(err, r, "list the processes of %s", id);
        }
        if (l.n)
                qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_pid);
        *ret = l.v;
        *ret_n = l.n;
        return 0;
}

int vs_oci_update(const char *root, const char *id, const char *resources, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = open_record(root, id, true, &rec, err);
        if (dfd < 0)
                return dfd;
        VsLimits old, l;
        int r = vs_oci_load_limits(dfd, &old, err);
        if (r < 0)
                return r;
        l = old;
        r = vs_oci_resources_parse(resources, strlen(resources), &l, err);
        if (r < 0)
                return r;
        VsCgroup cg;
        r = vs_oci_cgroup(&rec, &cg, err);
        if (r == 0 && !cg.n)
                r = vs_error(err, ENOENT, "container %s has no cgroup (stopped?)", id);
        if (r == 0)
                r = vs_limits_apply(&cg, &l, &old, true, err);
        vs_cgroup_release(&cg);
        if (r < 0)
                return r;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return vs_error(err, ENOMEM, "update");
        vs_limits_write(&l, f);
        fclose(f);
        r = vs_oci_write_atomic(dfd, "limits", text ? text : "", len, err);
        free(text);
        return r;
}

static json_object *u64(uint64_t v)
{
        return json_object_new_uint64(v == VS_CG_NONE ? 0 : v);
}

int vs_oci_stats(const char *root, const char *id, char **ret, VsError *err)
{
        VsOciRecord rec;
        _cleanup_close_ int dfd = open_record(root, id, false, &rec, err);
        if (dfd < 0)
                return dfd;
        int r;
        VsCgroup cg;
        VsCgUsage u;
        r = vs_oci_cgroup(&rec, &cg, err);
        if (r == 0 && !cg.n)
                r = vs_error(err, ENOENT, "container %s has no cgroup (stopped?)", id);
        if (r == 0)
                r = vs_cgroup_usage(&cg, false, &u, err);
        vs_cgroup_release(&cg);
        if (r < 0)
                return r;
        VsLimits l;
        vs_oci_load_limits(dfd, &l, NULL);
        json_object *j = json_object_new_object(), *d = json_object_new_object();
        json_object *cpu = json_object_new_object(), *usage = json_object_new_object();
        json_object_object_add(
            usage, "total", u64(u.cpu_usage_us == VS_CG_NONE ? VS_CG_NONE : u.cpu_usage_us * 1000));
        json_object_object_add(
            usage, "user", u64(u.cpu_user_us == VS_CG_NONE ? VS_CG_NONE : u.cpu_user_us * 1000));
        json_object_object_add(
            usage, "kernel",
            u64(u.cpu_system_us == VS_CG_NONE ? VS_CG_NONE : u.cpu_system_us * 1000));
        json_object_object_add(cpu, "usage", usage);
        json_object *thr = json_object_new_object();
        json_object_object_add(thr, "periods", u64(u.cpu_periods));
        json_object_object_add(thr, "throttledPeriods", u64(u.cpu_throttled_periods));
        json_object_object_add(
            thr, "throttledTime",
            u64(u.cpu_throttled_us == VS_CG_NONE ? VS_CG_NONE : u.cpu_throttled_us * 1000));
        json_object_object_add(cpu, "throttling", thr);
        json_object_object_add(d, "cpu", cpu);
        json_object *mem = json_object_new_object(), *mu = json_object_new_object();
        json_object_object_add(mu, "usage", u64(u.mem_current));
        json_object_object_add(mu, "max", u64(u.mem_peak));
        json_object_object_add(mu, "limit", u64(l.memory == VS_UNLIMITED ? VS_CG_NONE : l.memory));
        json_object_object_add(mu, "failcnt", u64(u.oom_kills));
        json_object_object_add(mem, "usage", mu);
        json_object_object_add(mem, "cache", u64(u.mem_cache));
        json_object *swap = json_object_new_object();
        json_object_object_add(swap, "usage", u64(u.swap_current));
        json_object_object_add(mem, "swap", swap);
        json_object_object_add(d, "memory", mem);
        json_object *pids = json_object_new_object();
        json_object_object_add(pids, "current", u64(u.tasks));
        json_object_object_add(pids, "limit",
                               u64(l.processes == VS_UNLIMITED ? VS_CG_NONE : l.processes));
        json_object_object_add(d, "pids", pids);
        json_object *bio = json_object_new_object();
        json_object_object_add(bio, "readBytes", u64(u.io_read_bytes));
        json_object_object_add(bio, "writeBytes", u64(u.io_write_bytes));
        json_object_object_add(d, "blkio", bio);
        json_object_object_add(j, "type", json_object_new_string("stats"));
        json_object_object_add(j, "id", json_object_new_string(id));
        json_object_object_add(j, "data", d);
        const char *t = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
        *ret = t ? strdup(t) : NULL;
        json_object_put(j);
        return *ret ? 0 : vs_error(err, ENOMEM, "stats");
}

/* ---- exec ---- */

/* "UID[:GID]" */
static int parse_user(const char *s, uid_t *uid, gid_t *gid, VsError *err)
{
        unsigned long long u, g;
        char buf[64];
        snprintf(buf, sizeof buf, "%s", s);
        char *colon = strchr(buf, ':');
        if (colon)
                *colon = '\0';
        if (vs_parse_u64(buf, &u) < 0 || u >= UINT32_MAX ||
            (colon && (vs_parse_u64(colon + 1, &g) < 0 || g >= UINT32_MAX)))
                return vs_error_input(err, "--user %s: say UID or UID:GID (numbers)", s);
        *uid = (uid_t)u;
        if (colon)
                *gid = (gid_t)g;
        return 0;
}

/* env with @add on top (a NAME= in @add replaces the container's). */
static char **merge_env(char *const *base, char *const *add)
{
        size_t n = 0, m = 0;
        while (base && base[n])
                n++;
        while (add && add[m])
                m++;
        char **out = calloc(n + m + 1, sizeof *out);
        if (!out)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                size_t len = strcspn(base[i], "=");
                bool replaced = false;
                for (size_t j = 0; j < m && !replaced; j++)
                        replaced = strncmp(add[j], base[i], len + 1) == 0;
                if (!replaced)
                        out[k++] = base[i];
        }
        for (size_t j = 0; j < m; j++)
                out[k++] = add[j];
        return out;
}

int vs_oci_exec(const VsOciExecOpts *o, int *ret_pidfd, VsError *err)
{
        VsOciRecord rec;
        VsOciConfig *c = NULL;
        VsOciProcess proc = {0}, *p;
        json_object *pjson = NULL;
        VsSeccomp *filter = NULL;
        char **env = NULL;
        VsContext ctx = VS_CONTEXT_INIT;
        int r, pidfd = -EBADF;

        _cleanup_close_ int dfd = open_record(o->root, o->id, false, &rec, err);
        if (dfd < 0)
                return dfd;
        VsOciStatus s = vs_oci_status_of(dfd, &rec);
        if (s != VS_OCI_RUNNING && s != VS_OCI_CREATED)
                return vs_error(err, EINVAL, "cannot exec in container %s: it is %s", o->id,
                                vs_oci_status_name(s));
        c = calloc(1, sizeof *c);
        if (!c)
                return vs_error(err, ENOMEM, "exec");
        if ((r = load_config(dfd, c, err)) < 0)
                goto out;
        if (o->process_file) {
                _cleanup_close_ int fd = open(o->process_file, O_RDONLY | O_CLOEXEC);
                size_t len = 0;
                _cleanup_free_ char *text =
                    fd < 0 ? NULL : vs_oci_read(AT_FDCWD, o->process_file, 4 << 20, &len);
                if (!text) {
                        r = vs_error_input(err, "--process %s: %s", o->process_file,
                                           strerror(errno));
                        goto out;
                }
                if ((r = vs_oci_process_parse(text, len, &proc, &pjson, err)) < 0)
                        goto out;
                p = &proc;
        } else {
                p = &c->process;
                if (!o->args || !o->args[0]) {
                        r = vs_error_input(err, "exec: no command given (COMMAND [ARGS], or "
                                                "--process FILE)");
                        goto out;
                }
                free(c->process.args); /* ours are o->args */
                c->process.args = (char **)(uintptr_t)o->args;
                p->terminal = o->tty;
                if (o->cwd)
                        p->cwd = o->cwd;
                if (o->user && (r = parse_user(o->user, &p->uid, &p->gid, err)) < 0)
                        goto out;
                for (int i = 0; i < o->n_groups && p->n_groups < VS_OCI_MAX_GROUPS; i++)
                        p->groups[p->n_groups++] = o->groups[i];
                for (int i = 0; i < o->n_caps; i++) {
                        VsCaps cap;
                        if (strncasecmp(o->caps[i], "CAP_", 4) != 0 ||
                            vs_caps_from_name(o->caps[i], &cap) < 0) {
                                r = vs_error_input(err,
                                                   "--cap %s: not a capability (e.g. "
                                                   "CAP_NET_ADMIN)",
                                                   o->caps[i]);
                                goto out;
                        }
                        for (int k = 0; k < VS_OCI_CAP_AMBIENT; k++)
                                p->caps[k] |= cap;
                }
                if (o->no_new_privs)
                        p->no_new_privs = true;
        }
        env = merge_env(p->env, o->process_file ? NULL : o->env);
        if (!env) {
                r = vs_error(err, ENOMEM, "exec");
                goto out;
        }
        if (p->terminal && !o->console_socket && !o->ret_pty) {
                r = vs_error_input(err, "a terminal needs --console-socket");
                goto out;
        }
        bool notify;
        if ((r = vs_oci_seccomp_build(c->seccomp, &filter, &notify, err)) < 0)
                goto out;
        pidfd = vs_oci_pidfd(&rec);
        if (pidfd < 0) {
                r = vs_error(err, ESRCH, "container %s is not running", o->id);
                goto out;
        }
        VsCred cred = vs_oci_cred(p);
        VsJoinSpec js = {
            .name = o->id,
            .pidfd = pidfd,
            .argv = p->args,
            .envp = env,
            .cwd = p->cwd,
            .no_new_privs = p->no_new_privs,
            .seccomp = {.mode = VS_SECCOMP_NONE},
            .rlimits = p->rlimits,
            .n_rlimits = p->n_rlimits,
            .tty = p->terminal,
            .stdio = {p->terminal ? -1 : 0, p->terminal ? -1 : 1, p->terminal ? -1 : 2},
            .filter = notify ? NULL : filter,
            .cred = &cred,
            .set_umask = p->has_umask,
            .umask = p->umask,
            .n_preserve = o->preserve_fds,
            .path_lookup = true,
        };
        if (notify) {
                r = vs_error_input(err, "exec: SCMP_ACT_NOTIFY filters are not supported for "
                                        "exec yet");
                goto out;
        }
        r = vs_context_join(&js, &ctx, err);
        if (r < 0)
                goto out;
        if (ctx.pty_master >= 0) {
                if (o->console_socket)
                        r = vs_oci_send_console(o->console_socket, ctx.pty_master, err);
                else
                        *o->ret_pty = TAKE_FD(ctx.pty_master);
        }
        if (r == 0 && o->pid_file)
                r = vs_oci_write_pid_file(o->pid_file, ctx.pid, err);
        if (r < 0) {
                pidfd_send_signal(ctx.pidfd, SIGKILL, NULL, 0);
                goto out;
        }
        *ret_pidfd = TAKE_FD(ctx.pidfd);
out:
        vs_closep(&pidfd);
        if (c && c->process.args == (char **)(uintptr_t)o->args)
                c->process.args = NULL;
        vs_context_release(&ctx);
        free(env);
        vs_seccomp_free(filter);
        vs_oci_process_free(&proc);
        json_object_put(pjson);
        if (c)
                vs_oci_config_free(c);
        free(c);
        return r;
}
