/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>

#include "console.h"
#include "cow.h"
#include "context.h"
#include "ctxid.h"
#include "parse.h"
#include "syscalls.h"
#include "viewd.h"
#include "limits.h"
#include "util.h"

int vs_guest_init(VsGuest *g, const VsPaths *paths, const VsHostConfig *host,
                  const char *cgroup_parent, const char *name, VsError *err)
{
        if (!vs_guest_name_valid(name))
                return vs_error_input(err,
                                      "\"%s\" is not a guest name (1-48 letters, digits, '-', '_' "
                                      "or '.', starting with a letter or digit)",
                                      name);
        g->paths = *paths;
        g->host = *host;
        g->cgroup_parent = cgroup_parent ? cgroup_parent : g->host.cgroup_parent;
        vs_guest_config_init(&g->cfg, name);
        snprintf(g->conf, sizeof g->conf, "%s/%s.conf", paths->guests_conf, name);
        snprintf(g->dir, sizeof g->dir, "%s/%s", paths->guests, name);
        snprintf(g->rootfs, sizeof g->rootfs, "%s/%s/rootfs", paths->guests, name);
        snprintf(g->base, sizeof g->base, "%s/%s/base", paths->guests, name);
        snprintf(g->work, sizeof g->work, "%s/%s/work", paths->guests, name);
        snprintf(g->log, sizeof g->log, "%s/%s.log", paths->log, name);
        return 0;
}

void vs_guest_layers(const VsGuest *g, VsCowLayers *l)
{
        *l = (VsCowLayers){
            .upper = g->rootfs, .base = g->base, .work = g->work, .store = g->paths.store};
}

int vs_guest_load(VsGuest *g, const VsPaths *paths, const VsHostConfig *host,
                  const char *cgroup_parent, const char *name, VsError *err)
{
        int r = vs_guest_init(g, paths, host, cgroup_parent, name, err);
        if (r < 0)
                return r;
        r = vs_guest_config_load(&g->cfg, g->conf, err);
        /* asked only when it failed: list loads every guest */
        if (r == -ENOENT && access(g->conf, F_OK) < 0 && errno == ENOENT)
                return vs_error_input(err, "no guest \"%s\" (no %s; see vserver list --all)", name,
                                      g->conf);
        return r;
}

/* run/NAME.started: the guest file as the running guest was started with. */
static void started_path(const VsGuest *g, char *buf, size_t size)
{
        vs_paths_run(&g->paths, VS_RUN_GUEST_STARTED, g->cfg.name, buf, size);
}

int vs_guest_load_started(VsGuest *g, const VsPaths *paths, const VsHostConfig *host,
                          const char *cgroup_parent, const char *name, VsError *err)
{
        int r = vs_guest_init(g, paths, host, cgroup_parent, name, err);
        if (r < 0)
                return r;
        char note[PATH_MAX];
        started_path(g, note, sizeof note);
        VsError e = {0};
        if (access(note, F_OK) == 0 && vs_guest_config_load(&g->cfg, note, &e) == 0)
                return 0;
        vs_guest_config_init(&g->cfg, name);
        if (access(g->conf, F_OK) < 0 && errno == ENOENT && access(g->dir, F_OK) < 0)
                return vs_error_input(err, "no guest \"%s\" (no %s; see vserver list --all)", name,
                                      g->conf);
        r = vs_guest_config_load(&g->cfg, g->conf, err);
        if (r < 0) {
                /* a broken file: what the kernel knows is enough to stop it */
                vs_guest_config_init(&g->cfg, name);
                return 1;
        }
        return 0;
}

int vs_guest_live_limits(VsGuest *g, const VsGuestState *st)
{
        if (!st->running)
                return 0;
        char note[PATH_MAX];
        started_path(g, note, sizeof note);
        VsGuestConfig *live = calloc(1, sizeof *live);
        if (!live)
                return -ENOMEM;
        vs_guest_config_init(live, g->cfg.name);
        int r = vs_guest_config_load(live, note, NULL);
        if (r == 0) {
                g->cfg.limits = live->limits;
                memcpy(g->cfg.rlimits, live->rlimits, sizeof g->cfg.rlimits);
                g->cfg.n_rlimits = live->n_rlimits;
        }
        free(live);
        return r == 0 ? 1 : 0;
}

int vs_guest_note_limits(const VsGuest *g, VsError *err)
{
        char note[PATH_MAX];
        started_path(g, note, sizeof note);
        VsGuestConfig *live = calloc(1, sizeof *live);
        if (!live)
                return vs_error(err, ENOMEM, "note the limits");
        vs_guest_config_init(live, g->cfg.name);
        int r = vs_guest_config_load(live, note, err);
        if (r == 0) {
                live->limits = g->cfg.limits;
                memcpy(live->rlimits, g->cfg.rlimits, sizeof live->rlimits);
                live->n_rlimits = g->cfg.n_rlimits;
                r = vs_guest_config_save(live, note, err);
        }
        free(live);
        return r;
}

int vs_guest_lock(const VsGuest *g, int *ret_fd, VsError *err)
{
        char path[PATH_MAX];
        int r = vs_mkdir_p(g->paths.run, 0755);
        if (r < 0)
                return vs_error(err, r, "create %s", g->paths.run);
        vs_paths_run(&g->paths, VS_RUN_GUEST_LOCK, g->cfg.name, path, sizeof path);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return vs_error(err, errno, "open %s", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                if (e == EWOULDBLOCK)
                        return vs_error(err, EBUSY,
                                        "another vserver command is working on %s (its lock %s "
                                        "is held)",
                                        g->cfg.name, path);
                return vs_error(err, e, "lock %s", path);
        }
        *ret_fd = fd;
        return 0;
}

/* The index of the guest's own numbering in NSpid: one below our pid namespace. */
static int guest_level(void)
{
        static int level = -1;
        long ns[32];
        if (level < 0) {
                int n = vs_proc_nspid(getpid(), ns, 32);
                level = n > 0 ? n : 1;
        }
        return level;
}

typedef struct Scan {
        int level;
        long want; /* the pid inside the guest */
        int nproc;
        pid_t found;
} Scan;

static int scan_pid(pid_t pid, void *data)
{
        Scan *s = data;
        long ns[32];
        s->nproc++;
        if (!s->found && vs_proc_nspid(pid, ns, 32) > s->level && ns[s->level] == s->want)
                s->found = pid;
        return 0;
}

static int find(const VsGuestState *st, long inner, pid_t *ret_pid, int *ret_pidfd, int *ret_nproc,
                unsigned long long *ret_start)
{
        Scan s = {.level = guest_level(), .want = inner};
        vs_cgroup_foreach_pid(&st->cgroup, scan_pid, &s);
        if (ret_nproc)
                *ret_nproc = s.nproc;
        if (!s.found)
                return -ESRCH;
        unsigned long long start = vs_proc_starttime(s.found);
        if (!start)
                return -ESRCH;
        if (ret_pidfd) {
                /* the pid may be reused before pidfd_open: same start, same process */
                int fd = pidfd_open(s.found, 0);
                if (fd < 0)
                        return -errno;
                if (vs_proc_starttime(s.found) != start) {
                        close(fd);
                        return -ESRCH;
                }
                *ret_pidfd = fd;
        }
        *ret_pid = s.found;
        if (ret_start)
                *ret_start = start;
        return 0;
}

int vs_guest_find(const VsGuestState *st, long inner, pid_t *ret_pid, int *ret_pidfd,
                  int *ret_nproc)
{
        return find(st, inner, ret_pid, ret_pidfd, ret_nproc, NULL);
}

void vs_guest_state_release(VsGuestState *st)
{
        vs_closep(&st->init_pidfd);
        st->init_pidfd = -EBADF;
        vs_cgroup_release(&st->cgroup);
}

/* Count the processes; is @hint among them? */
typedef struct Count {
        int n;
        pid_t hint;
        bool seen;
} Count;

static int count_pid(pid_t pid, void *data)
{
        Count *c = data;
        c->n++;
        c->seen = c->seen || pid == c->hint;
        return 0;
}

/*
 * The brief state's PID 1: the one its start noted (the context note), if
 * that pid is in the guest's cgroup.  No other process has its number there
 * while the guest runs (the guest's processes die with its PID 1), so
 * neither /proc/PID/status (the costliest file list read a guest) nor the
 * note's own check of /proc/PID/stat (a tenth of list's time) is read.
 */
static bool find_noted(const VsGuest *g, VsGuestState *st)
{
        unsigned long long start = 0;
        Count c = {.hint = vs_ctxid_init(g, &start)};
        if (c.hint <= 0)
                return false;
        vs_cgroup_foreach_pid(&st->cgroup, count_pid, &c);
        if (!c.seen)
                return false;
        st->init = c.hint;
        st->init_start = start;
        st->nproc = c.n;
        return true;
}

static int state(const VsGuest *g, bool brief, VsGuestState *ret, VsError *err)
{
        VsGuestState st = {.init_pidfd = -EBADF, .cgroup = VS_CGROUP_INIT};
        int r = vs_cgroup_open_if(&st.cgroup, g->cgroup_parent, g->cfg.name, err);
        if (r < 0)
                return r;
        if (st.cgroup.n > 0) {
                if (!brief || !find_noted(g, &st))
                        (void)find(&st, 1, &st.init, brief ? NULL : &st.init_pidfd, &st.nproc,
                                   &st.init_start);
                st.running = st.nproc > 0 || vs_cgroup_populated(&st.cgroup);
                st.frozen = st.running && vs_cgroup_frozen(&st.cgroup) > 0;
        }
        if (!brief && st.init > 0 && vs_context_own_userns(st.init, &st.userns, NULL) < 0)
                st.userns = false;
        *ret = st;
        return 0;
}

int vs_guest_state(const VsGuest *g, VsGuestState *ret, VsError *err)
{
        return state(g, false, ret, err);
}

int vs_guest_state_brief(const VsGuest *g, VsGuestState *ret, VsError *err)
{
        return state(g, true, ret, err);
}

/*
 * "/sbin/init --opt 'a b'" -> argv, in place in @buf; NULL for "none".
 * Words split on blanks; '...' and "..." quote, a backslash escapes one
 * character (no expansion of anything: this is not a shell).
 */
static char **split_init(char *buf, char **argv, int max)
{
        if (streq(buf, "none"))
                return NULL;
        int n = 0;
        char *in = buf, *out = buf;
        while (*in && n < max - 1) {
                while (*in == ' ' || *in == '\t')
                        in++;
                if (!*in)
                        break;
                argv[n++] = out;
                char quote = 0;
                for (; *in; in++) {
                        if (quote) {
                                if (*in == quote)
                                        quote = 0;
                                else if (*in == '\\' && quote == '"' && in[1])
                                        *out++ = *++in;
                                else
                                        *out++ = *in;
                        } else if (*in == '\'' || *in == '"') {
                                quote = *in;
                        } else if (*in == '\\' && in[1]) {
                                *out++ = *++in;
                        } else if (*in == ' ' || *in == '\t') {
                                break;
                        } else {
                                *out++ = *in;
                        }
                }
                bool more = *in != '\0';
                *out++ = '\0';
                if (more)
                        in++;
        }
        argv[n] = NULL;
        return argv;
}

/*
 * Is @init, looked up inside @rootfs (the guest's symlinks followed there,
 * never out of it), systemd?  A guest not delegated could not boot it.
 */
static bool init_is_systemd(const char *rootfs, const char *init)
{
        _cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return false;
        _cleanup_close_ int fd =
            vs_openat2(root, init, O_PATH | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = fd < 0 ? -1 : readlink(link, path, sizeof path - 1);
        if (n <= 0)
                return false;
        path[n] = '\0';
        const char *base = strrchr(path, '/');
        return streq(base ? base + 1 : path, "systemd");
}

static void net_cleanup(const VsGuest *g);

static void net_spec(const VsGuest *g, VsNetSpec *net, char *bpf_dir, size_t size)
{
        vs_paths_run(&g->paths, VS_RUN_BPF, NULL, bpf_dir, size);
        *net = (VsNetSpec){
            .mode = g->cfg.net,
            .ctx = g->cfg.context,
            .cfg = &g->cfg.netcfg,
            .device = g->host.net_device,
            .bridge = g->host.bridge,
            .bridge_addrs = g->host.bridge_addrs,
            .n_bridge_addrs = g->host.n_bridge_addrs,
            .bpf_dir = bpf_dir,
            .unix_guard = g->host.unix_guard_cgroup,
            .low_ports =
                g->cfg.userns && (vs_guest_caps(&g->cfg) & ((VsCaps)1 << CAP_NET_BIND_SERVICE)),
        };
}

/*
 * NET_ADMIN and NET_RAW are capabilities of the initial user namespace:
 * with them a netns or none guest reaches every network namespace by nsid
 * (the host's, other guests'), and an isolate guest the host's own stack.
 * No mode gets them by default; the host configures a guest's network, and
 * ping works through ICMP datagram sockets (ping_group_range).
 */
VsCaps vs_guest_caps(const VsGuestConfig *c)
{
        if (c->userns)
                return (vs_caps_userns() | c->caps_add) & ~c->caps_drop;
        return (vs_caps_default() | c->caps_add | c->caps_host) & ~c->caps_drop;
}

int vs_guest_range(const VsGuest *g, bool allocate, VsIdRange *ret, VsError *err)
{
        *ret = (VsIdRange){0};
        if (allocate)
                return vs_idmap_allocate(g->paths.subid, g->cfg.name, g->host.userns_first,
                                         g->host.userns_last, ret, err);
        int r = vs_idmap_lookup(g->paths.subid, g->cfg.name, ret, err);
        return r < 0 ? r : 0;
}

unsigned vs_guest_notify(const VsGuestConfig *c)
{
        if (!c->views)
                return 0;
        bool uname = c->uname_release[0] || c->uname_version[0] || c->uname_machine[0];
        return VS_NOTIFY_SYSINFO | (uname ? VS_NOTIFY_UNAME : 0);
}

bool vs_guest_affinity(const VsGuestConfig *c, cpu_set_t *ret)
{
        VsCpuBandwidth bw;
        if (!c->views || !vs_limits_bandwidth(&c->limits, &bw))
                return false;
        VsCgView v;
        memset(&v, 0xff, sizeof v);
        snprintf(v.cpus, sizeof v.cpus, "%s", c->limits.cpuset_cpus);
        v.cpu_quota_us = bw.quota_us;
        v.cpu_period_us = bw.period_us;
        bool set[VS_VIEW_MAX_CPUS];
        int n = vs_view_cpus(&v, c->context, set);
        v.cpu_quota_us = VS_UNLIMITED;
        bool all[VS_VIEW_MAX_CPUS];
        if (n >= vs_view_cpus(&v, c->context, all))
                return false; /* the limit leaves it every CPU it has */
        CPU_ZERO(ret);
        for (int i = 0; i < VS_VIEW_MAX_CPUS && i < CPU_SETSIZE; i++)
                if (set[i])
                        CPU_SET(i, ret);
        return true;
}

static int repin_one(pid_t pid, void *data)
{
        const cpu_set_t *cpus = data;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));) {
                unsigned long long tid;
                if (vs_parse_u64(e->d_name, &tid) == 0 && tid > 0 && tid < INT32_MAX)
                        (void)sched_setaffinity((pid_t)tid, sizeof *cpus, cpus);
        }
        if (d)
                closedir(d);
        return 0;
}

void vs_guest_repin(const VsGuest *g, const VsGuestState *st)
{
        cpu_set_t cpus;
        if (!g->cfg.views || !st->running)
                return;
        if (!vs_guest_affinity(&g->cfg, &cpus)) {
                /* no CPU limit that cuts its CPUs: every CPU (its cpuset still bounds it) */
                CPU_ZERO(&cpus);
                for (int i = 0; i < CPU_SETSIZE; i++)
                        CPU_SET(i, &cpus);
        }
        (void)vs_cgroup_foreach_pid(&st->cgroup, repin_one, &cpus);
}

/* What a start does once the guest's cgroup exists, and once its PID 1 does. */
typedef struct StartHooks {
        const VsGuest *g;
        VsNetSpec *net;
} StartHooks;

static int views_record(const VsGuest *g, const VsCgroup *cg, pid_t init, VsError *err)
{
        VsViewUname u = {g->cfg.uname_release, g->cfg.uname_version, g->cfg.uname_machine};
        return vs_views_register(g->cfg.context, cg, init, &u, err);
}

static int cgroup_cb(const VsCgroup *cg, void *data, VsError *err)
{
        StartHooks *h = data;
        int r = h->g->cfg.net == VS_NET_ISOLATE ? vs_net_isolate_start(h->net, cg, err) : 0;
        /* recorded before PID 1 runs: its first read of /proc/meminfo is its own */
        if (r == 0 && h->g->cfg.views)
                r = views_record(h->g, cg, 0, err);
        return r;
}

static int netns_cb(pid_t pid, int pidfd, void *data, VsError *err)
{
        StartHooks *h = data;
        return vs_net_netns_setup(h->net, pid, pidfd, err);
}

/*
 * A netns guest takes what the host settings give where its file is
 * silent: nat from bridge-nat, and for a family it has no route of, the
 * bridge's address as its gateway when one of its addresses is in the
 * bridge's network.  The started note keeps the result for stop.
 */
static void netns_defaults(VsGuest *g)
{
        VsNetConfig *c = &g->cfg.netcfg;
        if (!c->nat_set && c->n_addrs) {
                c->nat = g->host.bridge_nat;
                c->nat_set = true;
        }
        for (int b = 0; b < g->host.n_bridge_addrs; b++) {
                const VsNetAddr *br = &g->host.bridge_addrs[b];
                bool routed = false, inside = false;
                for (int i = 0; i < c->n_routes; i++)
                        routed |= c->routes[i].family == br->family;
                for (int i = 0; i < c->n_addrs; i++)
                        inside |= vs_net_addr_in(&c->addrs[i], br);
                if (routed || !inside || c->n_routes >= VS_NET_MAX_ROUTES)
                        continue;
                VsNetRoute *rt = &c->routes[c->n_routes++];
                *rt = (VsNetRoute){.family = br->family};
                memcpy(rt->gw, br->addr, sizeof rt->gw);
        }
}

VsDiskTree vs_guest_disk_tree(const VsGuest *g)
{
        return (VsDiskTree){.dir = g->dir,
                            .rootfs = g->rootfs,
                            .context = g->cfg.context,
                            .want = (VsDiskKind)g->host.disk_limits};
}

int vs_guest_disk_apply(const VsGuest *g, bool stopped, char *note, size_t nsz, VsError *err)
{
        VsDiskTree t = vs_guest_disk_tree(g);
        int r = vs_disk_attach(&t, err);
        if (r == 0 && (vs_limits_has_disk(&g->cfg.limits) || vs_disk_kind(&t) != VS_DISK_NONE))
                r = vs_disk_set(&t, &g->cfg.limits, stopped, note, nsz, err);
        return r < 0 ? vs_error_prefix(err, "%s", g->cfg.name) : 0;
}

int vs_guest_start(VsGuest *g, VsError *err)
{
        VsGuestState st;
        char pending[PATH_MAX];
        /* a killed unify may have left a shared file writable: fail closed */
        vs_paths_run(&g->paths, VS_RUN_UNIFY_PENDING, NULL, pending, sizeof pending);
        if (access(pending, F_OK) == 0)
                return vs_error_input(err,
                                      "an interrupted vserver unify left shared files to repair "
                                      "(run vserver unify --all --dry-run, or any unify, first)");
        int r = vs_guest_state(g, &st, err);
        if (r < 0)
                return r;
        if (st.running) {
                vs_guest_state_release(&st);
                return vs_error(err, EBUSY, "%s is already running", g->cfg.name);
        }
        /* a cgroup without processes: left by a start that was killed, or a crash */
        if (st.cgroup.n > 0 && vs_cgroup_destroy(&st.cgroup, err) < 0) {
                vs_guest_state_release(&st);
                return vs_error_prefix(err, "remove the stale cgroup");
        }
        if (st.cgroup.n > 0)
                net_cleanup(g);
        vs_guest_state_release(&st);

        /* its disk image on its root, its disk limit as its file says */
        char disk_note[256];
        r = vs_guest_disk_apply(g, true, disk_note, sizeof disk_note, err);
        if (r < 0)
                return r;
        struct stat rs;
        if (lstat(g->rootfs, &rs) < 0)
                return vs_error(err, errno, "the guest's tree %s", g->rootfs);
        if (!S_ISDIR(rs.st_mode) || rs.st_uid != 0)
                return vs_error(err, EPERM, "%s is not a directory owned by root", g->rootfs);

        r = vs_mkdir_p(g->paths.log, 0750);
        if (r < 0)
                return vs_error(err, r, "create %s", g->paths.log);

        char initbuf[sizeof g->cfg.init];
        char *argv[32];
        snprintf(initbuf, sizeof initbuf, "%s", g->cfg.init);

        char bpf_dir[PATH_MAX];
        VsNetSpec net;
        if (g->cfg.net == VS_NET_NETNS)
                netns_defaults(g);
        g->shadow_notes[0] = '\0';
        if (g->cfg.net == VS_NET_ISOLATE)
                (void)vs_net_shadow_notes(&g->cfg.netcfg, g->host.net_device, g->shadow_notes,
                                          sizeof g->shadow_notes);
        net_spec(g, &net, bpf_dir, sizeof bpf_dir);

        VsContextSpec spec;
        vs_context_spec_init(&spec);
        spec.name = g->cfg.name;
        spec.cgroup_parent = g->cgroup_parent;
        spec.root.rootfs = g->rootfs;
        VsCowLayers layers;
        vs_guest_layers(g, &layers);
        if (vs_cow_enabled(g->dir))
                spec.root.cow = &layers;
        spec.root.binds = g->cfg.binds;
        spec.root.n_binds = g->cfg.n_binds;
        spec.root.tmp_tmpfs = g->cfg.tmp_tmpfs;
        spec.root.boot = true;
        spec.delegate = g->cfg.delegate;
        spec.argv = split_init(initbuf, argv, (int)ARRAY_SIZE(argv));
        if (!g->cfg.delegate && spec.argv && init_is_systemd(g->rootfs, spec.argv[0]))
                return vs_error_input(err,
                                      "%s: its init %s is systemd, which must make cgroups of its "
                                      "own (vserver set %s guest.delegate=yes --save)",
                                      g->cfg.name, spec.argv[0], g->cfg.name);
        spec.envp = vs_context_env;
        spec.hostname = g->cfg.hostname;
        spec.domainname = g->cfg.domainname[0] ? g->cfg.domainname : NULL;
        spec.caps = vs_guest_caps(&g->cfg);
        spec.no_new_privs = g->cfg.no_new_privs;
        spec.seccomp.mode = g->cfg.seccomp;
        spec.seccomp.file = g->cfg.seccomp_file;
        spec.seccomp.allow_userns = g->cfg.allow_userns;
        if (g->cfg.userns) {
                /* allocated once, kept across restarts */
                r = vs_guest_range(g, true, &spec.userns, err);
                if (r < 0)
                        return r;
                spec.seccomp.userns = true;
                layers.uid = spec.userns.start;
                layers.gid = spec.userns.start;
        }
        /* its context id, addresses and ids: held from here (vs_ctxid_forget_running if not) */
        r = vs_ctxid_claim_start(g, &spec.userns, err);
        if (r < 0)
                return r;
        spec.rlimits = g->cfg.rlimits;
        spec.n_rlimits = g->cfg.n_rlimits;
        spec.net = g->cfg.net;
        spec.console = true; /* a pty of its own (or a pipe), kept by the console keeper */
        spec.console_pipe = g->cfg.console_log;
        spec.limits = &g->cfg.limits;
        spec.notify = vs_guest_notify(&g->cfg);
        cpu_set_t cpus;
        if (vs_guest_affinity(&g->cfg, &cpus))
                spec.affinity = &cpus;
        StartHooks hooks = {.g = g, .net = &net};
        spec.net_cgroup = cgroup_cb;
        if (g->cfg.net == VS_NET_NETNS)
                spec.net_child = netns_cb;
        spec.net_data = &hooks;

        /* its own /proc views: bound from the one view server (started if none runs) */
        int gate = -EBADF, view_fds[VS_VIEW_N];
        struct VsOverlay overlays[VS_VIEW_N];
        for (int i = 0; i < VS_VIEW_N; i++)
                view_fds[i] = -EBADF;
        if (g->cfg.views) {
                r = vs_views_ensure(&gate, err);
                if (r == 0)
                        r = vs_views_open(g->cfg.context,
                                          g->cfg.uname_release[0] || g->cfg.uname_version[0],
                                          view_fds, err);
                if (r < 0) {
                        vs_closep(&gate);
                        vs_ctxid_forget_running(g);
                        return vs_error_prefix(err, "its /proc views");
                }
                for (int i = 0; i < VS_VIEW_N; i++)
                        if (view_fds[i] >= 0)
                                overlays[spec.root.n_overlays++] =
                                    (struct VsOverlay){view_fds[i], vs_view_files[i].target};
                spec.root.overlays = overlays;
        }

        VsContext ctx = VS_CONTEXT_INIT;
        r = vs_context_start(&spec, &ctx, err);
        for (int i = 0; i < VS_VIEW_N; i++)
                vs_closep(&view_fds[i]);
        if (r == 0 && g->cfg.views)
                r = views_record(g, &ctx.cgroup, ctx.pid, err);
        /* its uname and sysinfo are the server's to answer: it holds the listener now */
        if (r == 0 && ctx.notify >= 0)
                r = vs_views_give(g->cfg.context, ctx.notify, err);
        vs_closep(&gate);
        if (r < 0 && ctx.pid > 0) /* started, but not recorded */
                (void)vs_context_destroy(&ctx, NULL);
        if (r < 0) {
                vs_views_unregister(g->cfg.context);
                net_cleanup(g);
                vs_ctxid_forget_running(g);
                return r;
        }
        r = vs_console_attach(g->paths.run, g->cfg.name, g->log, g->host.console_log_size,
                              ctx.pty_master, ctx.pidfd, err);
        if (r < 0) {
                /* a guest whose console nobody reads would block on it: fail whole */
                (void)vs_context_destroy(&ctx, NULL);
                net_cleanup(g);
                vs_views_unregister(g->cfg.context);
                vs_ctxid_forget_running(g);
                return r;
        }
        /* for stop and delete: what it runs with, whatever its file says later */
        char note[PATH_MAX];
        started_path(g, note, sizeof note);
        (void)vs_guest_config_note(&g->cfg, note, NULL);
        vs_ctxid_note_running(g, ctx.pid);
        /* daemonless: PID 1 lives on without us */
        vs_context_release(&ctx);
        return 0;
}

int vs_guest_net_notes(const VsGuest *g, char *buf, size_t size)
{
        const VsNetConfig *c = &g->cfg.netcfg;
        bool ns = g->cfg.net == VS_NET_NETNS;
        int n = 0;
        size_t used = 0;
        char a[96];
#define NOTE(...)                                                                                  \
        do {                                                                                       \
                if (used < size)                                                                   \
                        used += (size_t)snprintf(buf + used, size - used, __VA_ARGS__);            \
        } while (0)
        buf[0] = '\0';
        for (int i = 0; !c->nat && i < c->n_addrs; i++)
                if (vs_net_addr_private(&c->addrs[i])) {
                        NOTE("has a private address (%s): what it sends beyond this host gets no "
                             "answer (say [net] nat = yes: vserver set %s net.nat=yes --save)\n",
                             vs_net_addr_format(&c->addrs[i], a, sizeof a), g->cfg.name);
                        break;
                }
        for (int f = 0; ns && f < 2; f++) {
                int fam = f ? AF_INET6 : AF_INET;
                bool has = false, routed = false;
                for (int i = 0; i < c->n_addrs; i++)
                        has |= c->addrs[i].family == fam;
                for (int i = 0; i < c->n_routes; i++)
                        routed |= c->routes[i].family == fam && c->routes[i].prefix == 0;
                if (has && !routed)
                        NOTE("has no %s gateway: it reaches its bridge's network only (say "
                             "--gateway IP, or give the bridge an address in its network: "
                             "bridge-address in the host settings)\n",
                             f ? "IPv6" : "IPv4");
                else if (has && fam == AF_INET6 && c->nat && !vs_net_forwarding(AF_INET6))
                        NOTE("gets no IPv6 beyond this host: the host does not forward IPv6 "
                             "(net.ipv6.conf.all.forwarding = 0; vserver leaves it to the admin, "
                             "as it changes how the host takes router advertisements)\n");
        }
        NOTE("%s", g->shadow_notes);
#undef NOTE
        for (const char *p = buf; (p = strchr(p, '\n')); p++)
                n++;
        return n;
}

/* After the guest's processes are gone: what isolate keeps outside the
 * cgroup, and a netns guest's veth (gone with its namespace, but only later). */
static void net_cleanup(const VsGuest *g)
{
        char bpf_dir[PATH_MAX];
        VsNetSpec net;
        net_spec(g, &net, bpf_dir, sizeof bpf_dir);
        if (g->cfg.net == VS_NET_NETNS)
                (void)vs_net_netns_stop(&net, NULL);
        else if (g->cfg.net == VS_NET_ISOLATE)
                (void)vs_net_isolate_stop(&net, NULL);
}

static int stop_signal(const VsGuest *g, pid_t init)
{
        char path[64], comm[64];
        if (g->cfg.stop_signal)
                return g->cfg.stop_signal;
        snprintf(path, sizeof path, "/proc/%d/comm", (int)init);
        if (vs_read_file_at(AT_FDCWD, path, comm, sizeof comm) > 0 &&
            strncmp(comm, "systemd\n", 8) == 0)
                return SIGRTMIN + 3; /* systemd's "halt" as a container */
        return SIGTERM;              /* busybox init: shut down, then exit */
}

int vs_guest_stop(VsGuest *g, unsigned timeout, bool *ret_forced, VsError *err)
{
        VsGuestState st;
        int r = vs_guest_state(g, &st, err);
        if (r < 0)
                return r;
        *ret_forced = false;
        if (st.cgroup.n == 0)
                return 0;
        /* a suspended guest could not act on its stop signal */
        if (st.frozen)
                (void)vs_cgroup_freeze(&st.cgroup, false, NULL);
        if (st.init_pidfd >= 0) {
                int sig = stop_signal(g, st.init);
                if (pidfd_send_signal(st.init_pidfd, sig, NULL, 0) < 0 && errno != ESRCH) {
                        r = vs_error(err, errno, "signal PID 1");
                        goto out;
                }
                struct pollfd p = {.fd = st.init_pidfd, .events = POLLIN};
                struct timespec start, now;
                clock_gettime(CLOCK_MONOTONIC, &start);
                for (;;) {
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        long left =
                            (long)timeout * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
                                                    (now.tv_nsec - start.tv_nsec) / 1000000);
                        if (left <= 0) {
                                *ret_forced = true;
                                break;
                        }
                        int n = poll(&p, 1, (int)left);
                        if (n > 0)
                                break;
                        if (n < 0 && errno != EINTR) {
                                r = vs_error(err, errno, "wait for PID 1");
                                goto out;
                        }
                }
        }
        /* whatever is left, however it hid (double forks, other sessions) */
        r = vs_cgroup_destroy(&st.cgroup, err);
        if (r >= 0) {
                char note[PATH_MAX];
                net_cleanup(g);
                started_path(g, note, sizeof note);
                unlink(note);
                vs_ctxid_forget_running(g);
                vs_views_unregister(g->cfg.context);
        }
out:
        vs_guest_state_release(&st);
        return r;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void vs_guest_names_free(char **names, int n)
{
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
}

int vs_guest_list(const VsPaths *paths, char ***ret_names, int *ret_n, VsError *err)
{
        DIR *d = opendir(paths->guests_conf);
        *ret_names = NULL;
        *ret_n = 0;
        if (!d)
                return errno == ENOENT ? 0 : vs_error(err, errno, "open %s", paths->guests_conf);
        char **names = NULL;
        int n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len < 6 || !streq(de->d_name + len - 5, ".conf"))
                        continue;
                char name[64];
                if (len - 5 >= sizeof name)
                        continue;
                snprintf(name, sizeof name, "%.*s", (int)(len - 5), de->d_name);
                if (!vs_guest_name_valid(name))
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        char **nn = realloc(names, (size_t)cap * sizeof *nn);
                        if (!nn)
                                break;
                        names = nn;
                }
                names[n] = strdup(name);
                if (names[n])
                        n++;
        }
        closedir(d);
        if (n)
                qsort(names, (size_t)n, sizeof *names, cmp_names);
        *ret_names = names;
        *ret_n = n;
        return 0;
}

int vs_guest_suspend(const VsGuestState *st, bool suspend, VsError *err)
{
        if (!st->running)
                return vs_error_input(err, "it is not running");
        return vs_cgroup_freeze(&st->cgroup, suspend, err);
}

typedef struct Prlimits {
        const VsRlimit *rl;
        int n;
        int failed; /* errno of the first failure */
        pid_t failed_pid;
} Prlimits;

static int set_prlimits(pid_t pid, void *data)
{
        Prlimits *p = data;
        for (int i = 0; i < p->n; i++)
                if (prlimit(pid, (enum __rlimit_resource)p->rl[i].resource, &p->rl[i].limit, NULL) <
                        0 &&
                    errno != ESRCH && !p->failed) {
                        p->failed = errno;
                        p->failed_pid = pid;
                }
        return 0;
}

/*
 * In a child that joins the guest's IPC namespace: its sysctls are per
 * namespace.  A guest with a user namespace of its own owns them: the
 * child writes as that namespace's root (not dumpable first, out of reach).
 */
static int apply_ipc_in(int pidfd, bool userns, const VsLimits *l, VsError *err)
{
        bool any = l->ipc_sem[0] != '\0';
        for (int i = 0; i < VS_IPC_N; i++)
                any |= l->ipc[i] != VS_UNLIMITED;
        if (!any)
                return 0;
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return vs_error(err, errno, "pipe");
        pid_t pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return vs_error(err, errno, "fork");
        }
        if (pid == 0) {
                VsError e = {0};
                close(pipefd[0]);
                if (prctl(PR_SET_DUMPABLE, 0) < 0 ||
                    setns(pidfd, CLONE_NEWIPC | (userns ? CLONE_NEWUSER : 0)) < 0)
                        vs_error(&e, errno, "join the guest's IPC namespace");
                else if (userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
                        vs_error(&e, errno, "become root of the guest's user namespace");
                else
                        vs_limits_apply_ipc(l, &e);
                (void)!write(pipefd[1], &e, sizeof e);
                _exit(e.code ? 1 : 0);
        }
        close(pipefd[1]);
        VsError e = {0};
        ssize_t n = read(pipefd[0], &e, sizeof e);
        close(pipefd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (n == (ssize_t)sizeof e && e.code) {
                if (err)
                        *err = e;
                return -e.code;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vs_error(err, EIO, "set the IPC limits");
        return 0;
}

int vs_guest_apply_limits(const VsGuest *g, const VsGuestState *st, const VsLimits *prev,
                          VsError *err)
{
        if (!st->running)
                return vs_error_input(err, "it is not running");
        int r = vs_limits_apply(&st->cgroup, &g->cfg.limits, prev, true, err);
        if (r < 0)
                return r;
        if (g->cfg.n_rlimits) {
                Prlimits p = {.rl = g->cfg.rlimits, .n = g->cfg.n_rlimits};
                vs_cgroup_foreach_pid(&st->cgroup, set_prlimits, &p);
                if (p.failed)
                        return vs_error(err, p.failed, "set the rlimits of process %d%s",
                                        (int)p.failed_pid,
                                        p.failed == EPERM ? " (raising a hard limit needs "
                                                            "CAP_SYS_RESOURCE)"
                                                          : "");
        }
        if (st->init_pidfd >= 0) {
                r = apply_ipc_in(st->init_pidfd, st->userns, &g->cfg.limits, err);
                if (r < 0)
                        return r;
        }
        return 0;
}
