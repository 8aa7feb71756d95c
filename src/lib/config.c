/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idmap.h"
#include "limits.h"
#include "pattern.h"
#include "rlimit.h"
#include "util.h"

/* ---- signals ---------------------------------------------------------- */

static const struct {
        const char *name;
        int sig;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"PWR", SIGPWR},
};

int vs_signal_from_name(const char *s)
{
        unsigned long long n;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        if (vs_parse_u64(s, &n) == 0)
                return n >= 1 && n < (unsigned long long)NSIG ? (int)n : -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
                if (strcasecmp(s, signals[i].name) == 0)
                        return signals[i].sig;
        if (strncasecmp(s, "RTMIN", 5) == 0) {
                if (s[5] == '\0')
                        return SIGRTMIN;
                if (s[5] == '+' && vs_parse_u64(s + 6, &n) == 0 &&
                    n <= (unsigned long long)(SIGRTMAX - SIGRTMIN))
                        return SIGRTMIN + (int)n;
        }
        return -EINVAL;
}

const char *vs_signal_name(int sig, char *buf, size_t size)
{
        for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
                if (signals[i].sig == sig) {
                        snprintf(buf, size, "SIG%s", signals[i].name);
                        return buf;
                }
        if (sig >= SIGRTMIN && sig <= SIGRTMAX)
                snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
        else
                snprintf(buf, size, "%d", sig);
        return buf;
}

/* ---- host settings ---------------------------------------------------- */

void vs_host_config_init(VsHostConfig *h)
{
        *h = (VsHostConfig){.ctx_min = 1000, .ctx_max = 49151};
        snprintf(h->cgroup_parent, sizeof h->cgroup_parent, "/vserver");
        snprintf(h->mirror, sizeof h->mirror, "http://deb.debian.org/debian");
        snprintf(h->suite, sizeof h->suite, "bookworm");
        snprintf(h->net_device, sizeof h->net_device, "lo");
        snprintf(h->bridge, sizeof h->bridge, "vsbr0");
        h->console_log_size = 1ULL << 20;
        snprintf(h->unix_guard_cgroup, sizeof h->unix_guard_cgroup, "/");
        h->userns = true;
        h->userns_first = VS_IDMAP_POOL_FIRST;
        h->userns_last = VS_IDMAP_POOL_LAST;
}

void vs_host_config_own_cgroup(VsHostConfig *h, const char *root)
{
        if (h->cgroup_parent_set || !root || !*root)
                return;
        uint32_t hash = 2166136261u; /* FNV-1a */
        for (const char *p = root; *p; p++)
                hash = (hash ^ (unsigned char)*p) * 16777619u;
        snprintf(h->cgroup_parent, sizeof h->cgroup_parent, "/vserver-%08x", hash);
}

static bool ifname_valid(const char *d)
{
        VsNetAddr a;
        char buf[64], why[64];
        snprintf(buf, sizeof buf, "1.1.1.1@%s", d);
        return strlen(d) < IFNAMSIZ && vs_net_addr_parse(buf, &a, why, sizeof why) == 0;
}

/* Reads one line per call, so the handler knows the line number (inih has no lineno here). */
typedef struct Reader {
        const char *text; /* parsing from memory */
        FILE *file;
        const char *label;
        int line;
        VsError *err;
        int failed;
        void *target;
        /* for "set twice" checks of single-valued keys */
        char seen[64][48];
        int n_seen;
} Reader;

static char *read_line(char *str, int num, void *stream)
{
        Reader *r = stream;
        r->line++;
        if (r->file)
                return fgets(str, num, r->file);
        if (!r->text || !*r->text)
                return NULL;
        const char *nl = strchr(r->text, '\n');
        size_t len = nl ? (size_t)(nl - r->text) + 1 : strlen(r->text);
        if (len >= (size_t)num)
                len = (size_t)num - 1;
        memcpy(str, r->text, len);
        str[len] = '\0';
        r->text += len;
        return str;
}

static int bad(Reader *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(Reader *r, const char *key, const char *fmt, ...)
{
        char msg[VS_ERROR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (!r->failed)
                vs_error_input(r->err, "%s:%d: %s: %s", r->label, r->line, key, msg);
        r->failed = 1;
        return 0; /* stop parsing */
}

/* inih strips ';' comments only; "value   # note" is common in our files. */
static void strip_comment(char *v)
{
        for (char *p = v; *p; p++)
                if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
                        *p = '\0';
                        break;
                }
        size_t n = strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                v[--n] = '\0';
}

static int parse_bool(const char *v, bool *ret)
{
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
            !strcasecmp(v, "on")) {
                *ret = true;
                return 0;
        }
        if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
            !strcasecmp(v, "off")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

static int host_handler(void *user, const char *section, const char *name, const char *value)
{
        Reader *r = user;
        VsHostConfig *h = r->target;
        char key[128], v[1024];
        snprintf(key, sizeof key, "%s.%s", section, name);
        snprintf(v, sizeof v, "%s", value ? value : "");
        strip_comment(v);
        if (!streq(section, "host"))
                return bad(r, key, "unknown section [%s] (host settings live in [host])", section);
        if (streq(name, "cgroup-parent")) {
                if (!vs_cgroup_path_valid(v) || strlen(v) >= sizeof h->cgroup_parent)
                        return bad(r, key,
                                   "\"%s\" is not a cgroup path (say /vserver: letters, digits, "
                                   ". _ - and /)",
                                   v);
                snprintf(h->cgroup_parent, sizeof h->cgroup_parent, "%s", v);
                h->cgroup_parent_set = true;
        } else if (streq(name, "context-range")) {
                unsigned long long a, b;
                char *dash = strchr(v, '-');
                if (dash)
                        *dash = '\0';
                if (!dash || vs_parse_u64(v, &a) < 0 || vs_parse_u64(dash + 1, &b) < 0 || a < 2 ||
                    b > 65535 || a > b)
                        return bad(r, key, "say FIRST-LAST within 2-65535, e.g. 1000-49151");
                h->ctx_min = (unsigned)a;
                h->ctx_max = (unsigned)b;
        } else if (streq(name, "debian-mirror")) {
                if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8) &&
                    strncmp(v, "file:/", 6))
                        return bad(r, key, "\"%s\" is not an http(s):// or file:/ URL", v);
                snprintf(h->mirror, sizeof h->mirror, "%s", v);
        } else if (streq(name, "debian-suite")) {
                snprintf(h->suite, sizeof h->suite, "%s", v);
        } else if (streq(name, "net-device") || streq(name, "bridge")) {
                if (!ifname_valid(v))
                        return bad(r, key,
                                   "\"%s\" is not an interface name (1-15 characters, "
                                   "no spaces, / : or @)",
                                   v);
                snprintf(streq(name, "bridge") ? h->bridge : h->net_device, IFNAMSIZ, "%s", v);
        } else if (streq(name, "bridge-address")) {
                char copy[256], *save = NULL, why[160];
                snprintf(copy, sizeof copy, "%s", v);
                h->n_bridge_addrs = 0;
                for (char *t = strtok_r(copy, " \t,", &save); t;
                     t = strtok_r(NULL, " \t,", &save)) {
                        VsNetAddr a;
                        if (vs_net_addr_parse(t, &a, why, sizeof why) < 0)
                                return bad(r, key, "\"%s\": %s", t, why);
                        unsigned host = a.family == AF_INET ? 32 : 128;
                        if (a.dev[0] || a.prefix >= host || a.prefix == 0)
                                return bad(r, key,
                                           "\"%s\" is not the bridge's address in its network "
                                           "(say 10.88.0.1/16 or fd88::1/64, no @DEVICE)",
                                           t);
                        for (int i = 0; i < h->n_bridge_addrs; i++)
                                if (h->bridge_addrs[i].family == a.family)
                                        return bad(r, key, "one address of each family");
                        h->bridge_addrs[h->n_bridge_addrs++] = a;
                }
        } else if (streq(name, "bridge-nat")) {
                if (parse_bool(v, &h->bridge_nat) < 0)
                        return bad(r, key, "\"%s\" is not yes or no", v);
        } else if (streq(name, "unify-exclude")) {
                char why[160];
                char copy[sizeof h->unify_exclude], *save = NULL;
                if (strlen(v) >= sizeof copy)
                        return bad(r, key, "too long (at most 1023 characters)");
                snprintf(copy, sizeof copy, "%s", v);
                for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
                        if (vs_pattern_check(t, why, sizeof why) < 0)
                                return bad(r, key, "%s", why);
                snprintf(h->unify_exclude, sizeof h->unify_exclude, "%s", v);
        } else if (streq(name, "unix-guard-cgroup")) {
                if (v[0] != '/' || (v[1] && !vs_cgroup_path_valid(v)) ||
                    strlen(v) >= sizeof h->unix_guard_cgroup)
                        return bad(r, key,
                                   "\"%s\" is not an absolute cgroup path (say /, or "
                                   "/system.slice)",
                                   v);
                snprintf(h->unix_guard_cgroup, sizeof h->unix_guard_cgroup, "%s", v);
        } else if (streq(name, "console-log-size")) {
                unsigned long long size;
                if (vs_parse_size(v, &size) < 0 || size < 4096 || size > (1ULL << 40))
                        return bad(r, key, "\"%s\" is not a size from 4K to 1T (say 1M)", v);
                h->console_log_size = size;
        } else if (streq(name, "userns")) {
                if (parse_bool(v, &h->userns) < 0)
                        return bad(r, key, "\"%s\" is not yes or no", v);
        } else if (streq(name, "userns-ids")) {
                if (vs_idmap_parse_pool(v, &h->userns_first, &h->userns_last) < 0)
                        return bad(r, key,
                                   "\"%s\" is not a pool of host ids (say FIRST-LAST, from "
                                   "65536 up, room for at least 65536: e.g. "
                                   "1073741824-1879048191)",
                                   v);
        } else {
                return bad(r, key,
                           "unknown key (known: cgroup-parent, context-range, debian-mirror, "
                           "debian-suite, net-device, bridge, bridge-address, bridge-nat, "
                           "unify-exclude, console-log-size, unix-guard-cgroup, userns, "
                           "userns-ids)");
        }
        return 1;
}

static int parse_with(Reader *r, ini_handler handler)
{
        int rc = ini_parse_stream(read_line, r, handler, r);
        if (r->failed)
                return -EINVAL;
        if (rc > 0)
                return vs_error_input(
                    r->err, "%s:%d: not an INI line (say [section] or key = value)", r->label, rc);
        if (rc < 0)
                return vs_error(r->err, ENOMEM, "parse %s", r->label);
        return 0;
}

int vs_host_config_load(VsHostConfig *h, const char *path, VsError *err)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : vs_error(err, errno, "open %s", path);
        Reader r = {.file = f, .label = path, .err = err, .target = h};
        int ret = parse_with(&r, host_handler);
        fclose(f);
        return ret;
}

/* ---- guest files ------------------------------------------------------ */

void vs_guest_config_init(VsGuestConfig *g, const char *name)
{
        *g = (VsGuestConfig){
            .stop_timeout = 10,
            .tmp_tmpfs = true,
            .net = VS_NET_ISOLATE,
            .seccomp = VS_SECCOMP_DEFAULT,
            .no_new_privs = false,
        };
        snprintf(g->name, sizeof g->name, "%s", name);
        snprintf(g->hostname, sizeof g->hostname, "%s", name);
        snprintf(g->init, sizeof g->init, "/sbin/init");
        vs_limits_init(&g->limits);
        vs_limits_defaults(&g->limits);
}

bool vs_hostname_valid(const char *h)
{
        size_t n = strlen(h);
        if (n == 0 || n > 64 || h[0] == '-' || h[0] == '.')
                return false;
        for (const char *p = h; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
                        return false;
        return true;
}

static const char *const rlimit_keys[] = {
    "as",   "core",   "cpu",   "data",   "fsize",  "locks",      "memlock", "msgqueue",
    "nice", "nofile", "nproc", "rtprio", "rttime", "sigpending", "stack",   NULL};

static bool is_rlimit_key(const char *k)
{
        for (const char *const *p = rlimit_keys; *p; p++)
                if (streq(*p, k))
                        return true;
        return false;
}

/* Parse a capability list ("NET_RAW SYS_TIME", commas also allowed). */
static int parse_caps(const char *v, VsCaps *ret, char *badname, size_t size)
{
        char buf[1024];
        VsCaps all = 0;
        snprintf(buf, sizeof buf, "%s", v);
        for (char *save = NULL, *t = strtok_r(buf, " ,\t", &save); t;
             t = strtok_r(NULL, " ,\t", &save)) {
                VsCaps c;
                if (vs_caps_from_name(t, &c) < 0) {
                        snprintf(badname, size, "%s", t);
                        return -EINVAL;
                }
                all |= c;
        }
        *ret = all;
        return 0;
}

static bool multi_valued(const char *key)
{
        return streq(key, "mount.bind") || streq(key, "net.address") || streq(key, "net.gateway") ||
               streq(key, "net.route") || streq(key, "unify.exclude");
}

/* Returns 0 or -EINVAL with a message (without the location) in @msg. */
static int set_key(VsGuestConfig *g, const char *section, const char *name, const char *v,
                   char *msg, size_t msz)
{
        unsigned long long n;
        char key[128];
        snprintf(key, sizeof key, "%s.%s", section, name);

#define BAD(...)                                                                                   \
        do {                                                                                       \
                snprintf(msg, msz, __VA_ARGS__);                                                   \
                return -EINVAL;                                                                    \
        } while (0)

        if (streq(section, "guest")) {
                if (streq(name, "context")) {
                        if (vs_parse_u64(v, &n) < 0 || n < 2 || n > 65535)
                                BAD("\"%s\" is not a context id (say a number from 2 to 65535)", v);
                        g->context = (unsigned)n;
                } else if (streq(name, "hostname") || streq(name, "domainname")) {
                        if (!vs_hostname_valid(v))
                                BAD("\"%s\" is not a host name (letters, digits, '-' and '.', at "
                                    "most 64)",
                                    v);
                        snprintf(streq(name, "hostname") ? g->hostname : g->domainname,
                                 sizeof g->hostname, "%s", v);
                } else if (streq(name, "init")) {
                        if (!streq(v, "none") && v[0] != '/')
                                BAD("\"%s\" is not an absolute path (say /sbin/init, a command "
                                    "with its arguments, or none)",
                                    v);
                        if (strlen(v) >= sizeof g->init)
                                BAD("the command is too long");
                        snprintf(g->init, sizeof g->init, "%s", v);
                } else if (streq(name, "stop-signal")) {
                        int s = vs_signal_from_name(v);
                        if (s < 0 || s == SIGKILL)
                                BAD("\"%s\" is not a signal to stop with (say SIGTERM, SIGPWR or "
                                    "SIGRTMIN+3)",
                                    v);
                        g->stop_signal = s;
                } else if (streq(name, "stop-timeout")) {
                        if (vs_parse_u64(v, &n) < 0 || n > 3600)
                                BAD("\"%s\" is not a number of seconds (0 to 3600)", v);
                        g->stop_timeout = (unsigned)n;
                } else if (streq(name, "autostart")) {
                        if (parse_bool(v, &g->autostart) < 0)
                                BAD("\"%s\" is not yes or no", v);
                } else if (streq(name, "tmp")) {
                        if (streq(v, "tmpfs"))
                                g->tmp_tmpfs = true;
                        else if (streq(v, "disk"))
                                g->tmp_tmpfs = false;
                        else
                                BAD("\"%s\": say tmpfs or disk", v);
                } else {
                        BAD("unknown key (known: context, hostname, domainname, init, "
                            "stop-signal, stop-timeout, autostart, tmp)");
                }
        } else if (streq(section, "net")) {
                char why[160];
                if (streq(name, "mode")) {
                        if (streq(v, "none"))
                                g->net = VS_NET_NONE;
                        else if (streq(v, "host"))
                                g->net = VS_NET_HOST;
                        else if (streq(v, "isolate"))
                                g->net = VS_NET_ISOLATE;
                        else if (streq(v, "netns"))
                                g->net = VS_NET_NETNS;
                        else
                                BAD("\"%s\" is not a network mode (say isolate, netns, none or "
                                    "host)",
                                    v);
                } else if (streq(name, "address")) {
                        VsNetConfig *c = &g->netcfg;
                        if (c->n_addrs == VS_NET_MAX_ADDRS)
                                BAD("at most %d addresses", VS_NET_MAX_ADDRS);
                        if (vs_net_addr_parse(v, &c->addrs[c->n_addrs], why, sizeof why) < 0)
                                BAD("\"%s\": %s (say IP/PREFIX[@DEVICE], e.g. 192.0.2.10/24@eth0)",
                                    v, why);
                        for (int i = 0; i < c->n_addrs; i++)
                                if (vs_net_addr_same(&c->addrs[i], &c->addrs[c->n_addrs]))
                                        BAD("\"%s\" is given twice", v);
                        c->n_addrs++;
                } else if (streq(name, "gateway") || streq(name, "route")) {
                        VsNetConfig *c = &g->netcfg;
                        VsNetRoute rt;
                        if (c->n_routes == VS_NET_MAX_ROUTES)
                                BAD("at most %d routes and gateways", VS_NET_MAX_ROUTES);
                        if (vs_net_route_parse(v, &rt, why, sizeof why) < 0)
                                BAD("\"%s\": %s", v, why);
                        if (streq(name, "gateway") && rt.prefix)
                                BAD("\"%s\": a gateway is one address (say route = PREFIX via IP "
                                    "for more)",
                                    v);
                        if (streq(name, "route") && !rt.prefix)
                                BAD("\"%s\": say PREFIX/LENGTH via IP (a default route is "
                                    "gateway = IP)",
                                    v);
                        c->routes[c->n_routes++] = rt;
                } else if (streq(name, "nat")) {
                        g->netcfg.nat_set = true;
                        if (parse_bool(v, &g->netcfg.nat) < 0)
                                BAD("\"%s\" is not yes or no", v);
                } else {
                        BAD("unknown key (known: mode, address, gateway, route, nat)");
                }
        } else if (streq(section, "limits")) {
                int lr = vs_limits_set_key(&g->limits, name, v, msg, msz);
                if (lr < 0)
                        return -EINVAL;
                if (lr > 0) {
                        /* one of ours */
                } else if (is_rlimit_key(name)) {
                        char spec[256];
                        VsRlimit rl;
                        VsError e = {0};
                        snprintf(spec, sizeof spec, "%s=%s", name, v);
                        if (vs_rlimit_parse(spec, &rl, &e) < 0)
                                BAD("\"%s\" is not a limit (say SOFT or SOFT:HARD, a number or "
                                    "unlimited)",
                                    v);
                        int i = 0;
                        while (i < g->n_rlimits && g->rlimits[i].resource != rl.resource)
                                i++;
                        if (i == VS_CONFIG_MAX_RLIMITS)
                                BAD("too many limits");
                        g->rlimits[i] = rl;
                        if (i == g->n_rlimits)
                                g->n_rlimits++;
                } else {
                        BAD("unknown key (known: memory, memory.soft, swap, processes, "
                            "cpu.fill-rate, cpu.interval, cpu.tokens-max, cpu.hard, cpu.limit, "
                            "cpu.weight, cpuset, cpuset.mems, io.read-bps, io.write-bps, "
                            "io.read-iops, io.write-iops, ipc.shmmax, ipc.shmall, ipc.shmmni, "
                            "ipc.msgmax, ipc.msgmnb, ipc.msgmni, ipc.sem, and the rlimits as, "
                            "core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, "
                            "nproc, rtprio, rttime, sigpending, stack)");
                }
        } else if (streq(section, "security")) {
                char badcap[64];
                if (streq(name, "capabilities.add") || streq(name, "capabilities.drop") ||
                    streq(name, "capabilities.host-wide")) {
                        VsCaps c;
                        if (parse_caps(v, &c, badcap, sizeof badcap) < 0)
                                BAD("\"%s\" is not a capability (say NET_RAW or SYS_TIME; see "
                                    "capabilities(7))",
                                    badcap);
                        /* NET_ADMIN: per network mode, in vs_guest_config_check */
                        VsCaps host = c & vs_caps_host_wide() & ~((VsCaps)1 << CAP_NET_ADMIN);
                        if (streq(name, "capabilities.add") && host) {
                                char names[512];
                                BAD("%s act%s on the whole host (the kernel has no namespace for "
                                    "it): if that is what you mean, say capabilities.host-wide = "
                                    "%s",
                                    vs_caps_format(host, names, sizeof names),
                                    host & (host - 1) ? "" : "s", names);
                        }
                        if (streq(name, "capabilities.add"))
                                g->caps_add = c;
                        else if (streq(name, "capabilities.drop"))
                                g->caps_drop = c;
                        else
                                g->caps_host = c;
                } else if (streq(name, "seccomp")) {
                        if (streq(v, "default")) {
                                g->seccomp = VS_SECCOMP_DEFAULT;
                        } else if (streq(v, "none")) {
                                g->seccomp = VS_SECCOMP_NONE;
                        } else if (v[0] == '/' && strlen(v) < sizeof g->seccomp_file) {
                                g->seccomp = VS_SECCOMP_FILE;
                                snprintf(g->seccomp_file, sizeof g->seccomp_file, "%s", v);
                        } else {
                                BAD("\"%s\": say default, none or an absolute file path", v);
                        }
                } else if (streq(name, "allow-userns")) {
                        if (parse_bool(v, &g->allow_userns) < 0)
                                BAD("\"%s\" is not yes or no", v);
                } else if (streq(name, "no-new-privs")) {
                        if (parse_bool(v, &g->no_new_privs) < 0)
                                BAD("\"%s\" is not yes or no", v);
                } else if (streq(name, "userns")) {
                        if (parse_bool(v, &g->userns) < 0)
                                BAD("\"%s\" is not yes or no", v);
                } else {
                        BAD("unknown key (known: userns, capabilities.add, capabilities.drop, "
                            "capabilities.host-wide, seccomp, allow-userns, no-new-privs)");
                }
        } else if (streq(section, "mount")) {
                if (!streq(name, "bind"))
                        BAD("unknown key (known: bind)");
                if (g->n_binds >= VS_CONFIG_MAX_BINDS)
                        BAD("too many binds (at most %d)", VS_CONFIG_MAX_BINDS);
                int i = g->n_binds;
                VsError e = {0};
                snprintf(g->bind_spec[i], sizeof g->bind_spec[i], "%s", v);
                snprintf(g->bind_buf[i], sizeof g->bind_buf[i], "%s", v);
                if (vs_bind_parse(g->bind_buf[i], &g->binds[i], &e) < 0)
                        BAD("%s", e.msg);
                g->n_binds++;
        } else if (streq(section, "unify")) {
                char why[160];
                if (!streq(name, "exclude"))
                        BAD("unknown key (known: exclude)");
                if (g->n_unify_exclude >= VS_CONFIG_MAX_EXCLUDES)
                        BAD("too many patterns (at most %d)", VS_CONFIG_MAX_EXCLUDES);
                if (strlen(v) >= sizeof g->unify_exclude[0])
                        BAD("a pattern is at most 255 characters");
                if (vs_pattern_check(v, why, sizeof why) < 0)
                        BAD("%s", why);
                snprintf(g->unify_exclude[g->n_unify_exclude++], sizeof g->unify_exclude[0], "%s",
                         v);
        } else {
                BAD("unknown section [%s] (known: guest, net, limits, security, mount, unify)",
                    section);
        }
#undef BAD
        return 0;
}

static int guest_handler(void *user, const char *section, const char *name, const char *value)
{
        Reader *r = user;
        VsGuestConfig *g = r->target;
        char key[128], v[PATH_MAX], msg[VS_ERROR_MSG_MAX - 128];
        snprintf(key, sizeof key, "%s.%s", section, name);
        snprintf(v, sizeof v, "%s", value ? value : "");
        strip_comment(v);
        if (!multi_valued(key)) {
                for (int i = 0; i < r->n_seen; i++)
                        if (streq(r->seen[i], key))
                                return bad(r, key, "set twice (keep one line)");
                if (r->n_seen < (int)ARRAY_SIZE(r->seen) && strlen(key) < sizeof r->seen[0])
                        snprintf(r->seen[r->n_seen++], sizeof r->seen[0], "%s", key);
        }
        if (set_key(g, section, name, v, msg, sizeof msg) < 0)
                return bad(r, key, "%s", msg);
        return 1;
}

int vs_guest_config_check(const VsGuestConfig *g, const char *label, VsError *err)
{
        char msg[VS_ERROR_MSG_MAX - 128];
        if (vs_limits_check(&g->limits, msg, sizeof msg) < 0)
                return vs_error_input(err, "%s: [limits]: %s", label, msg);
        bool ns = g->net == VS_NET_NETNS, iso = g->net == VS_NET_ISOLATE;
        if (g->netcfg.n_addrs && !ns && !iso)
                return vs_error_input(err, "%s: [net]: addresses need mode isolate or netns",
                                      label);
        if (g->netcfg.nat && !iso && !ns)
                return vs_error_input(err, "%s: [net]: nat = yes is for mode isolate or netns",
                                      label);
        if (g->netcfg.nat && !g->netcfg.n_addrs)
                return vs_error_input(err, "%s: [net]: nat = yes needs an address", label);
        if (g->netcfg.n_routes && !ns)
                return vs_error_input(err,
                                      "%s: [net]: gateways and routes need mode netns (in "
                                      "isolate the host's routing table serves the guest)",
                                      label);
        for (int i = 0; ns && i < g->netcfg.n_addrs; i++)
                if (g->netcfg.addrs[i].dev[0])
                        return vs_error_input(err,
                                              "%s: [net]: address @%s: in mode netns the "
                                              "guest's interface is eth0 (drop the @device)",
                                              label, g->netcfg.addrs[i].dev);
        VsCaps netcaps;
        if (g->userns && g->caps_host) {
                char names[512];
                return vs_error_input(err,
                                      "%s: [security]: capabilities.host-wide = %s: a guest with "
                                      "userns = yes holds no capability over the host (say "
                                      "userns = no if it must)",
                                      label, vs_caps_format(g->caps_host, names, sizeof names));
        }
        /* in its own user namespace the guest's NET_ADMIN is over its own network only */
        if (g->userns)
                return 0;
        if (!iso && g->net != VS_NET_HOST && vs_caps_from_name("NET_ADMIN", &netcaps) == 0 &&
            ((g->caps_add | g->caps_host) & netcaps))
                return vs_error_input(err,
                                      "%s: [security]: capabilities.add: NET_ADMIN of the host's "
                                      "user namespace reaches every network namespace by nsid, "
                                      "the host's too (configure the guest's network in [net])",
                                      label);
        if (g->net == VS_NET_HOST && vs_caps_from_name("NET_ADMIN", &netcaps) == 0 &&
            (g->caps_add & netcaps))
                return vs_error_input(err,
                                      "%s: [security]: capabilities.add: NET_ADMIN acts on the "
                                      "whole host (its network): if that is what you mean, say "
                                      "capabilities.host-wide = NET_ADMIN",
                                      label);
        if (iso && vs_caps_from_name("NET_ADMIN", &netcaps) == 0) {
                VsCaps raw;
                (void)vs_caps_from_name("NET_RAW", &raw);
                if ((g->caps_add | g->caps_host) & (netcaps | raw))
                        return vs_error_input(err,
                                              "%s: [security]: capabilities.add: NET_ADMIN "
                                              "and NET_RAW would act on the host's own "
                                              "network in mode isolate (use mode netns)",
                                              label);
        }
        return 0;
}

int vs_guest_config_parse(VsGuestConfig *g, const char *text, const char *label, VsError *err)
{
        Reader r = {.text = text, .label = label, .err = err, .target = g};
        int ret = parse_with(&r, guest_handler);
        return ret < 0 ? ret : vs_guest_config_check(g, label, err);
}

int vs_guest_config_load(VsGuestConfig *g, const char *path, VsError *err)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return vs_error(err, errno, "open %s", path);
        const char *base = strrchr(path, '/');
        Reader r = {.file = f, .label = base ? base + 1 : path, .err = err, .target = g};
        int ret = parse_with(&r, guest_handler);
        fclose(f);
        return ret < 0 ? ret : vs_guest_config_check(g, r.label, err);
}

int vs_guest_config_set(VsGuestConfig *g, const char *key, const char *value, const char *where,
                        VsError *err)
{
        char sec[64], msg[VS_ERROR_MSG_MAX - 128];
        const char *dot = strchr(key, '.');
        if (!dot || (size_t)(dot - key) >= sizeof sec)
                return vs_error_input(err, "%s: \"%s\" is not a key (say section.key)", where, key);
        snprintf(sec, sizeof sec, "%.*s", (int)(dot - key), key);
        if (set_key(g, sec, dot + 1, value, msg, sizeof msg) < 0)
                return vs_error_input(err, "%s: %s", where, msg);
        return 0;
}

int vs_guest_config_write(const VsGuestConfig *g, FILE *f)
{
        char buf[1024], sig[32];
        fprintf(f, "# vserver guest %s\n[guest]\n", g->name);
        if (g->context)
                fprintf(f, "context = %u\n", g->context);
        fprintf(f, "hostname = %s\n", g->hostname);
        if (g->domainname[0])
                fprintf(f, "domainname = %s\n", g->domainname);
        fprintf(f, "init = %s\n", g->init);
        if (g->stop_signal)
                fprintf(f, "stop-signal = %s\n", vs_signal_name(g->stop_signal, sig, sizeof sig));
        fprintf(f, "stop-timeout = %u\n", g->stop_timeout);
        fprintf(f, "autostart = %s\n", g->autostart ? "yes" : "no");
        fprintf(f, "tmp = %s\n", g->tmp_tmpfs ? "tmpfs" : "disk");
        static const char *const modes[] = {[VS_NET_NONE] = "none",
                                            [VS_NET_HOST] = "host",
                                            [VS_NET_ISOLATE] = "isolate",
                                            [VS_NET_NETNS] = "netns"};
        fprintf(f, "\n[net]\nmode = %s\n", modes[g->net]);
        for (int i = 0; i < g->netcfg.n_addrs; i++)
                fprintf(f, "address = %s\n",
                        vs_net_addr_format(&g->netcfg.addrs[i], buf, sizeof buf));
        for (int i = 0; i < g->netcfg.n_routes; i++)
                fprintf(f, "%s = %s\n", g->netcfg.routes[i].prefix ? "route" : "gateway",
                        vs_net_route_format(&g->netcfg.routes[i], buf, sizeof buf));
        if (g->netcfg.nat_set)
                fprintf(f, "nat = %s\n", g->netcfg.nat ? "yes" : "no");
        fprintf(f, "\n[limits]\n");
        vs_limits_write(&g->limits, f);
        for (int i = 0; i < g->n_rlimits; i++) {
                char s[32], h[32];
                vs_rlimit_format(g->rlimits[i].limit.rlim_cur, s, sizeof s);
                vs_rlimit_format(g->rlimits[i].limit.rlim_max, h, sizeof h);
                const char *name = vs_rlimit_name(g->rlimits[i].resource);
                char lower[32];
                size_t k = 0;
                for (; k < sizeof lower - 1 && name[k]; k++)
                        lower[k] =
                            (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
                lower[k] = '\0';
                if (streq(s, h))
                        fprintf(f, "%s = %s\n", lower, s);
                else
                        fprintf(f, "%s = %s:%s\n", lower, s, h);
        }
        fprintf(f, "\n[security]\n");
        fprintf(f, "userns = %s\n", g->userns ? "yes" : "no");
        if (g->caps_add)
                fprintf(f, "capabilities.add = %s\n", vs_caps_format(g->caps_add, buf, sizeof buf));
        if (g->caps_host)
                fprintf(f, "capabilities.host-wide = %s\n",
                        vs_caps_format(g->caps_host, buf, sizeof buf));
        if (g->caps_drop)
                fprintf(f, "capabilities.drop = %s\n",
                        vs_caps_format(g->caps_drop, buf, sizeof buf));
        fprintf(f, "seccomp = %s\n",
                g->seccomp == VS_SECCOMP_NONE   ? "none"
                : g->seccomp == VS_SECCOMP_FILE ? g->seccomp_file
                                                : "default");
        fprintf(f, "allow-userns = %s\n", g->allow_userns ? "yes" : "no");
        fprintf(f, "no-new-privs = %s\n", g->no_new_privs ? "yes" : "no");
        if (g->n_binds) {
                fprintf(f, "\n[mount]\n");
                for (int i = 0; i < g->n_binds; i++)
                        fprintf(f, "bind = %s\n", g->bind_spec[i]);
        }
        if (g->n_unify_exclude) {
                fprintf(f, "\n[unify]\n");
                for (int i = 0; i < g->n_unify_exclude; i++)
                        fprintf(f, "exclude = %s\n", g->unify_exclude[i]);
        }
        return ferror(f) ? -EIO : 0;
}

/* @text to @path: a temporary file beside it, fsync, rename. */
static int write_atomic(const char *path, const char *text, size_t len, VsError *err)
{
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof tmp)
                return vs_error(err, ENAMETOOLONG, "%s", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return vs_error(err, errno, "create %s", tmp);
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, text + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? errno : EIO;
                        close(fd);
                        unlink(tmp);
                        return vs_error(err, e, "write %s", tmp);
                }
                off += (size_t)n;
        }
        if (fsync(fd) < 0) {
                int e = errno;
                close(fd);
                unlink(tmp);
                return vs_error(err, e, "write %s", tmp);
        }
        close(fd);
        if (rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return vs_error(err, e, "rename %s to %s", tmp, path);
        }
        return 0;
}

int vs_guest_config_save(const VsGuestConfig *g, const char *path, VsError *err)
{
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        if (!m)
                return vs_error(err, errno, "write %s", path);
        int r = vs_guest_config_write(g, m);
        if (fclose(m) != 0 || r < 0) {
                free(text);
                return vs_error(err, EIO, "write %s", path);
        }
        r = write_atomic(path, text, len, err);
        free(text);
        return r;
}

/* ---- editing a guest file in place ------------------------------------------------ */

typedef struct Lines {
        char **v;
        int n, cap;
} Lines;

static int lines_insert(Lines *l, int at, const char *text)
{
        if (l->n == l->cap) {
                int cap = l->cap ? l->cap * 2 : 64;
                char **v = realloc(l->v, (size_t)cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        char *s = strdup(text);
        if (!s)
                return -ENOMEM;
        memmove(&l->v[at + 1], &l->v[at], (size_t)(l->n - at) * sizeof *l->v);
        l->v[at] = s;
        l->n++;
        return 0;
}

static void lines_free(Lines *l)
{
        for (int i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
}

/* "[name]" -> name in @sec; false if @line is not a section header. */
static bool section_of(const char *line, char *sec, size_t size)
{
        const char *p = line + strspn(line, " \t");
        if (*p != '[')
                return false;
        const char *e = strchr(p, ']');
        if (!e)
                return false;
        snprintf(sec, size, "%.*s", (int)(e - p - 1), p + 1);
        return true;
}

/* Does @line set @key ("key = ...")? */
static bool line_sets(const char *line, const char *key)
{
        const char *p = line + strspn(line, " \t");
        size_t n = strlen(key);
        if (strncmp(p, key, n) != 0)
                return false;
        p += n;
        p += strspn(p, " \t");
        return *p == '=' || *p == ':';
}

static int edit_one(Lines *l, const char *section, const char *key, const char *value)
{
        char sec[64] = "", line[PATH_MAX + 128];
        int found = -1, last_in_section = -1;
        snprintf(line, sizeof line, "%s = %s", key, value);
        for (int i = 0; i < l->n; i++) {
                char s[64];
                if (section_of(l->v[i], s, sizeof s)) {
                        snprintf(sec, sizeof sec, "%s", s);
                        if (streq(sec, section))
                                last_in_section = i;
                        continue;
                }
                if (!streq(sec, section))
                        continue;
                if (l->v[i][strspn(l->v[i], " \t")] != '\0')
                        last_in_section = i;
                if (line_sets(l->v[i], key))
                        found = i;
        }
        if (found >= 0) {
                char *s = strdup(line);
                if (!s)
                        return -ENOMEM;
                free(l->v[found]);
                l->v[found] = s;
                return 0;
        }
        if (last_in_section >= 0)
                return lines_insert(l, last_in_section + 1, line);
        char head[80];
        snprintf(head, sizeof head, "[%s]", section);
        int r = 0;
        if (l->n && l->v[l->n - 1][0])
                r = lines_insert(l, l->n, "");
        if (r == 0)
                r = lines_insert(l, l->n, head);
        return r < 0 ? r : lines_insert(l, l->n, line);
}

int vs_guest_config_edit(const char *path, const char *const *keys, const char *const *values,
                         int n, VsError *err)
{
        Lines l = {0};
        char buf[PATH_MAX + 256];
        int r = 0;
        FILE *f = fopen(path, "re");
        if (!f)
                return vs_error(err, errno, "open %s", path);
        while (fgets(buf, sizeof buf, f)) {
                buf[strcspn(buf, "\n")] = '\0';
                if ((r = lines_insert(&l, l.n, buf)) < 0)
                        break;
        }
        fclose(f);
        for (int i = 0; r == 0 && i < n; i++) {
                const char *dot = strchr(keys[i], '.');
                char sec[64];
                if (!dot || (size_t)(dot - keys[i]) >= sizeof sec) {
                        r = -EINVAL;
                        break;
                }
                snprintf(sec, sizeof sec, "%.*s", (int)(dot - keys[i]), keys[i]);
                r = edit_one(&l, sec, dot + 1, values[i]);
        }
        char *text = NULL;
        size_t len = 0;
        FILE *m = r == 0 ? open_memstream(&text, &len) : NULL;
        if (m) {
                for (int i = 0; i < l.n; i++)
                        fprintf(m, "%s\n", l.v[i]);
                fclose(m);
        }
        lines_free(&l);
        if (r < 0 || !text) {
                free(text);
                return vs_error(err, r < 0 ? -r : ENOMEM, "edit %s", path);
        }
        /* what we write must parse */
        VsGuestConfig *check = malloc(sizeof *check);
        const char *base = strrchr(path, '/');
        if (!check) {
                free(text);
                return vs_error(err, ENOMEM, "edit %s", path);
        }
        vs_guest_config_init(check, "check");
        r = vs_guest_config_parse(check, text, base ? base + 1 : path, err);
        free(check);
        if (r == 0)
                r = write_atomic(path, text, strlen(text), err);
        free(text);
        return r;
}
