/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest file's keys: one table (keys.h), their setters and writers. */
#include "keys.h"

#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "pattern.h"
#include "rlimit.h"
#include "util.h"

#define BAD(...)                                                                                   \
        do {                                                                                       \
                snprintf(msg, msz, __VA_ARGS__);                                                   \
                return -EINVAL;                                                                    \
        } while (0)

/* ---- [guest] ------------------------------------------------------------ */

static int set_context(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        unsigned long long n;
        if (vs_parse_u64(v, &n) < 0 || n < 2 || n > 65535)
                BAD("\"%s\" is not a context id (say a number from 2 to 65535)", v);
        g->context = (unsigned)n;
        return 0;
}

static void write_context(const VsGuestConfig *g, FILE *f)
{
        if (g->context)
                fprintf(f, "context = %u\n", g->context);
}

static int set_hostname(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        if (!vs_hostname_valid(v))
                BAD("\"%s\" is not a host name (letters, digits, '-' and '.', at most 64)", v);
        snprintf(streq(name, "hostname") ? g->hostname : g->domainname, sizeof g->hostname, "%s",
                 v);
        return 0;
}

static void write_hostname(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "hostname = %s\n", g->hostname);
}

static void write_domainname(const VsGuestConfig *g, FILE *f)
{
        if (g->domainname[0])
                fprintf(f, "domainname = %s\n", g->domainname);
}

static int set_init(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        if (!streq(v, "none") && v[0] != '/')
                BAD("\"%s\" is not an absolute path (say /sbin/init, a command with its "
                    "arguments, or none)",
                    v);
        if (strlen(v) >= sizeof g->init)
                BAD("the command is too long");
        snprintf(g->init, sizeof g->init, "%s", v);
        return 0;
}

static void write_init(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "init = %s\n", g->init);
}

static int set_stop_signal(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        int s = vs_signal_from_name(v);
        if (s < 0 || s == SIGKILL)
                BAD("\"%s\" is not a signal to stop with (say SIGTERM, SIGPWR or SIGRTMIN+3)", v);
        g->stop_signal = s;
        return 0;
}

static void write_stop_signal(const VsGuestConfig *g, FILE *f)
{
        char sig[32];
        if (g->stop_signal)
                fprintf(f, "stop-signal = %s\n", vs_signal_name(g->stop_signal, sig, sizeof sig));
}

static int set_stop_timeout(VsGuestConfig *g, const char *name, const char *v, char *msg,
                            size_t msz)
{
        (void)name;
        unsigned long long n;
        if (vs_parse_u64(v, &n) < 0 || n > 3600)
                BAD("\"%s\" is not a number of seconds (0 to 3600)", v);
        g->stop_timeout = (unsigned)n;
        return 0;
}

static void write_stop_timeout(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "stop-timeout = %u\n", g->stop_timeout);
}

/* yes/no keys, by name */
static bool *flag_of(VsGuestConfig *g, const char *section, const char *name)
{
        if (streq(name, "autostart"))
                return &g->autostart;
        if (streq(section, "net") && streq(name, "nat"))
                return &g->netcfg.nat;
        if (streq(name, "userns"))
                return &g->userns;
        if (streq(name, "views"))
                return &g->views;
        if (streq(name, "delegate"))
                return &g->delegate;
        if (streq(name, "allow-userns"))
                return &g->allow_userns;
        return streq(name, "no-new-privs") ? &g->no_new_privs : NULL;
}

static int set_flag(VsGuestConfig *g, const char *section, const char *name, const char *v,
                    char *msg, size_t msz)
{
        bool *b = flag_of(g, section, name);
        if (!b || vs_parse_bool(v, b) < 0)
                BAD("\"%s\" is not yes or no", v);
        return 0;
}

static int set_guest_flag(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        return set_flag(g, "guest", name, v, msg, msz);
}

static void write_autostart(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "autostart = %s\n", g->autostart ? "yes" : "no");
}

static void write_views(const VsGuestConfig *g, FILE *f)
{
        if (!g->views)
                fprintf(f, "views = no\n");
}

static void write_delegate(const VsGuestConfig *g, FILE *f)
{
        if (!g->delegate)
                fprintf(f, "delegate = no\n");
}

static char *uname_field(VsGuestConfig *g, const char *name)
{
        return streq(name, "uname.release")   ? g->uname_release
               : streq(name, "uname.version") ? g->uname_version
                                              : g->uname_machine;
}

static int set_uname(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        /* the file quotes it: a version starts with '#', a comment to the file's reader */
        char unq[80];
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"' && n - 2 < sizeof unq) {
                snprintf(unq, sizeof unq, "%.*s", (int)(n - 2), v + 1);
                v = unq;
                n -= 2;
        }
        if (n == 0 || n > 64)
                BAD("\"%s\": say 1 to 64 characters", v);
        for (const char *p = v; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        BAD("\"%s\" has a control character", v);
        if (streq(name, "uname.machine"))
                for (const char *p = v; *p; p++)
                        if (*p == ' ' || *p == '/')
                                BAD("\"%s\" is not a machine name (say x86_64, i686, ...)", v);
        snprintf(uname_field(g, name), 65, "%s", v);
        return 0;
}

static void write_uname(const VsGuestConfig *g, FILE *f)
{
        if (g->uname_release[0])
                fprintf(f, "uname.release = \"%s\"\n", g->uname_release);
        if (g->uname_version[0])
                fprintf(f, "uname.version = \"%s\"\n", g->uname_version);
        if (g->uname_machine[0])
                fprintf(f, "uname.machine = \"%s\"\n", g->uname_machine);
}

/* A key of two words: @off or @on into @b. */
static int set_either(const char *v, const char *off, const char *on, bool *b, char *msg,
                      size_t msz)
{
        if (!streq(v, off) && !streq(v, on))
                BAD("\"%s\": say %s or %s", v, off, on);
        *b = streq(v, on);
        return 0;
}

static int set_tmp(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        return set_either(v, "disk", "tmpfs", &g->tmp_tmpfs, msg, msz);
}

static void write_tmp(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "tmp = %s\n", g->tmp_tmpfs ? "tmpfs" : "disk");
}

static int set_console(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        return set_either(v, "pty", "log", &g->console_log, msg, msz);
}

static void write_console(const VsGuestConfig *g, FILE *f)
{
        if (g->console_log)
                fprintf(f, "console = log\n");
}

/* ---- [net] -------------------------------------------------------------- */

static const char *const net_modes[] = {[VS_NET_NONE] = "none",
                                        [VS_NET_HOST] = "host",
                                        [VS_NET_ISOLATE] = "isolate",
                                        [VS_NET_NETNS] = "netns"};

static int set_mode(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        for (size_t i = 0; i < ARRAY_SIZE(net_modes); i++)
                if (streq(v, net_modes[i])) {
                        g->net = (VsNetMode)i;
                        return 0;
                }
        BAD("\"%s\" is not a network mode (say isolate, netns, none or host)", v);
}

static void write_mode(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "mode = %s\n", net_modes[g->net]);
}

static int set_address(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        char why[160];
        VsNetConfig *c = &g->netcfg;
        if (c->n_addrs == VS_NET_MAX_ADDRS)
                BAD("at most %d addresses", VS_NET_MAX_ADDRS);
        if (vs_net_addr_parse(v, &c->addrs[c->n_addrs], why, sizeof why) < 0)
                BAD("\"%s\": %s (say IP/PREFIX[@DEVICE], e.g. 192.0.2.10/24@eth0)", v, why);
        for (int i = 0; i < c->n_addrs; i++)
                if (vs_net_addr_same(&c->addrs[i], &c->addrs[c->n_addrs]))
                        BAD("\"%s\" is given twice", v);
        c->n_addrs++;
        return 0;
}

static void write_address(const VsGuestConfig *g, FILE *f)
{
        char buf[128];
        for (int i = 0; i < g->netcfg.n_addrs; i++)
                fprintf(f, "address = %s\n",
                        vs_net_addr_format(&g->netcfg.addrs[i], buf, sizeof buf));
}

static int set_route(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        char why[160];
        VsNetConfig *c = &g->netcfg;
        VsNetRoute rt;
        if (c->n_routes == VS_NET_MAX_ROUTES)
                BAD("at most %d routes and gateways", VS_NET_MAX_ROUTES);
        if (vs_net_route_parse(v, &rt, why, sizeof why) < 0)
                BAD("\"%s\": %s", v, why);
        if (streq(name, "gateway") && rt.prefix)
                BAD("\"%s\": a gateway is one address (say route = PREFIX via IP for more)", v);
        if (streq(name, "route") && !rt.prefix)
                BAD("\"%s\": say PREFIX/LENGTH via IP (a default route is gateway = IP)", v);
        c->routes[c->n_routes++] = rt;
        return 0;
}

/* gateways and routes, in the order given */
static void write_routes(const VsGuestConfig *g, FILE *f)
{
        char buf[128];
        for (int i = 0; i < g->netcfg.n_routes; i++)
                fprintf(f, "%s = %s\n", g->netcfg.routes[i].prefix ? "route" : "gateway",
                        vs_net_route_format(&g->netcfg.routes[i], buf, sizeof buf));
}

static int set_nat(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        g->netcfg.nat_set = true;
        return set_flag(g, "net", name, v, msg, msz);
}

static void write_nat(const VsGuestConfig *g, FILE *f)
{
        if (g->netcfg.nat_set)
                fprintf(f, "nat = %s\n", g->netcfg.nat ? "yes" : "no");
}

/* ---- [limits] ----------------------------------------------------------- */

static int set_limit(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        int r = vs_limits_set_key(&g->limits, name, v, msg, msz);
        if (r == 0)
                BAD("limits.c does not know it"); /* a row without its parser: a bug of ours */
        return r < 0 ? -EINVAL : 0;
}

static void write_limits(const VsGuestConfig *g, FILE *f)
{
        vs_limits_write(&g->limits, f);
}

static int set_rlimit(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        char spec[256];
        VsRlimit rl;
        snprintf(spec, sizeof spec, "%s=%s", name, v);
        if (vs_rlimit_parse(spec, &rl, NULL) < 0)
                BAD("\"%s\" is not a limit (say SOFT or SOFT:HARD, a number or unlimited)", v);
        int i = 0;
        while (i < g->n_rlimits && g->rlimits[i].resource != rl.resource)
                i++;
        if (i == VS_CONFIG_MAX_RLIMITS)
                BAD("too many limits");
        g->rlimits[i] = rl;
        if (i == g->n_rlimits)
                g->n_rlimits++;
        return 0;
}

static void write_rlimits(const VsGuestConfig *g, FILE *f)
{
        for (int i = 0; i < g->n_rlimits; i++) {
                char s[32], h[32], lower[32];
                vs_rlimit_format(g->rlimits[i].limit.rlim_cur, s, sizeof s);
                vs_rlimit_format(g->rlimits[i].limit.rlim_max, h, sizeof h);
                const char *name = vs_rlimit_name(g->rlimits[i].resource);
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
}

/* ---- [security] --------------------------------------------------------- */

static int set_security_flag(VsGuestConfig *g, const char *name, const char *v, char *msg,
                             size_t msz)
{
        return set_flag(g, "security", name, v, msg, msz);
}

static void write_userns(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "userns = %s\n", g->userns ? "yes" : "no");
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

static int set_caps(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        char badcap[64];
        VsCaps c;
        if (parse_caps(v, &c, badcap, sizeof badcap) < 0)
                BAD("\"%s\" is not a capability (say NET_RAW or SYS_TIME; see capabilities(7))",
                    badcap);
        /* NET_ADMIN: per network mode, in vs_guest_config_check */
        VsCaps host = c & vs_caps_host_wide() & ~((VsCaps)1 << CAP_NET_ADMIN);
        if (streq(name, "capabilities.add") && host) {
                char names[512];
                BAD("%s act%s on the whole host (the kernel has no namespace for it): if that is "
                    "what you mean, say capabilities.host-wide = %s",
                    vs_caps_format(host, names, sizeof names), host & (host - 1) ? "" : "s", names);
        }
        if (streq(name, "capabilities.add"))
                g->caps_add = c;
        else if (streq(name, "capabilities.drop"))
                g->caps_drop = c;
        else
                g->caps_host = c;
        return 0;
}

static void write_caps(FILE *f, const char *key, VsCaps c)
{
        char buf[1024];
        if (c)
                fprintf(f, "%s = %s\n", key, vs_caps_format(c, buf, sizeof buf));
}

static void write_caps_add(const VsGuestConfig *g, FILE *f)
{
        write_caps(f, "capabilities.add", g->caps_add);
}

static void write_caps_host(const VsGuestConfig *g, FILE *f)
{
        write_caps(f, "capabilities.host-wide", g->caps_host);
}

static void write_caps_drop(const VsGuestConfig *g, FILE *f)
{
        write_caps(f, "capabilities.drop", g->caps_drop);
}

static int set_seccomp(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
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
        return 0;
}

static void write_seccomp(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "seccomp = %s\n",
                g->seccomp == VS_SECCOMP_NONE   ? "none"
                : g->seccomp == VS_SECCOMP_FILE ? g->seccomp_file
                                                : "default");
}

static void write_allow_userns(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "allow-userns = %s\n", g->allow_userns ? "yes" : "no");
}

static void write_no_new_privs(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "no-new-privs = %s\n", g->no_new_privs ? "yes" : "no");
}

/* ---- [mount], [unify] --------------------------------------------------- */

static int set_bind(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        if (g->n_binds >= VS_CONFIG_MAX_BINDS)
                BAD("too many binds (at most %d)", VS_CONFIG_MAX_BINDS);
        int i = g->n_binds;
        size_t len = strlen(v) + 1;
        if (2 * len > sizeof g->bind_text - g->bind_used) /* each fits a line: never */
                BAD("the binds are too long together");
        VsError e = {0};
        char *spec = g->bind_text + g->bind_used, *copy = spec + len;
        memcpy(spec, v, len);
        memcpy(copy, v, len);
        if (vs_bind_parse(copy, &g->binds[i], &e) < 0)
                BAD("%s", e.msg);
        g->bind_spec[i] = g->bind_used;
        g->bind_used += (unsigned)(2 * len);
        g->n_binds++;
        return 0;
}

static void write_binds(const VsGuestConfig *g, FILE *f)
{
        for (int i = 0; i < g->n_binds; i++)
                fprintf(f, "bind = %s\n", g->bind_text + g->bind_spec[i]);
}

static int set_exclude(VsGuestConfig *g, const char *name, const char *v, char *msg, size_t msz)
{
        (void)name;
        char why[160];
        if (g->n_unify_exclude >= VS_CONFIG_MAX_EXCLUDES)
                BAD("too many patterns (at most %d)", VS_CONFIG_MAX_EXCLUDES);
        if (strlen(v) >= sizeof g->unify_exclude[0])
                BAD("a pattern is at most 255 characters");
        if (vs_pattern_check(v, why, sizeof why) < 0)
                BAD("%s", why);
        snprintf(g->unify_exclude[g->n_unify_exclude++], sizeof g->unify_exclude[0], "%s", v);
        return 0;
}

static void write_excludes(const VsGuestConfig *g, FILE *f)
{
        for (int i = 0; i < g->n_unify_exclude; i++)
                fprintf(f, "exclude = %s\n", g->unify_exclude[i]);
}

/* ---- the table ---------------------------------------------------------- */

#define LIMIT(n, opt, h, arg)                                                                      \
        {                                                                                          \
                "limits", n, set_limit, NULL, 0, opt, h, arg                                       \
        }
#define RLIMIT(n)                                                                                  \
        {                                                                                          \
                "limits", n, set_rlimit, NULL, VS_KEY_RLIMIT, NULL, "setrlimit " n, NULL           \
        }

/* In the order the file is written; a section's rows together. */
const VsKey vs_keys[] = {
    {"guest", "context", set_context, write_context, 0, "context",
     "its context id (default: the lowest free one)", "ID"},
    {"guest", "hostname", set_hostname, write_hostname, 0, "hostname",
     "its host name (default: the guest's name)", "NAME"},
    {"guest", "domainname", set_hostname, write_domainname, 0, "domainname", "its NIS domain name",
     "NAME"},
    {"guest", "init", set_init, write_init, 0, "init",
     "PID 1 (default /sbin/init; \"none\": a built-in reaper)", "CMD"},
    {"guest", "stop-signal", set_stop_signal, write_stop_signal, 0, NULL, "what stops PID 1"},
    {"guest", "stop-timeout", set_stop_timeout, write_stop_timeout, 0, NULL,
     "seconds before stop kills"},
    {"guest", "autostart", set_guest_flag, write_autostart, 0, NULL, "start --autostart starts it"},
    {"guest", "tmp", set_tmp, write_tmp, 0, NULL, "/tmp: tmpfs or disk"},
    {"guest", "console", set_console, write_console, 0, NULL,
     "pty (default): a console of its own; log: init's output through a pipe, no pty"},
    {"guest", "views", set_guest_flag, write_views, 0, "views",
     "its own /proc/meminfo, cpuinfo, stat, loadavg, swaps, diskstats (default yes)", "yes|no"},
    {"guest", "delegate", set_guest_flag, write_delegate, 0, "delegate",
     "its root may make cgroups below its own, as systemd must (default yes); no: one cgroup a "
     "hierarchy, all read-only (less kernel memory; on a cgroup2 host a memory cgroup fewer)",
     "yes|no"},
    {"guest", "uname.release", set_uname, write_uname, 0, "uname-release",
     "the kernel release uname -r shows inside (default: the host's)", "STRING"},
    {"guest", "uname.version", set_uname, NULL, 0, "uname-version",
     "the kernel version uname -v shows inside", "STRING"},
    {"guest", "uname.machine", set_uname, NULL, 0, "uname-machine",
     "the machine uname -m shows inside, e.g. i686", "STRING"},

    {"net", "mode", set_mode, write_mode, 0, "net",
     "isolate (default): the host's stack, kept to the guest's addresses; netns: its own stack on "
     "a bridge; none: loopback only; host: unrestricted",
     "MODE"},
    {"net", "address", set_address, write_address, VS_KEY_MULTI, "address",
     "IP/PREFIX[@DEVICE], e.g. 192.0.2.10/24@eth0", "A"},
    {"net", "gateway", set_route, write_routes, VS_KEY_MULTI, "gateway",
     "netns: the default route, one per family", "IP"},
    {"net", "route", set_route, NULL, VS_KEY_MULTI, NULL, "netns: PREFIX via IP"},
    {"net", "nat", set_nat, write_nat, 0, NULL, "outbound NAT"},

    {"limits", "memory", set_limit, write_limits, 0, "memory",
     "memory limit, e.g. 512M (OOM inside the guest above it)", "SIZE"},
    LIMIT("memory.soft", NULL, "reclaimed first above it", NULL),
    LIMIT("swap", "swap", "swap on top of memory (0: none)", "SIZE"),
    LIMIT("processes", "processes", "process limit", "N"),
    LIMIT("cpu.fill-rate", NULL, "token bucket: tokens per interval", NULL),
    LIMIT("cpu.interval", NULL, "token bucket: ticks of 1 ms", NULL),
    LIMIT("cpu.tokens-max", NULL, "token bucket: its size", NULL),
    LIMIT("cpu.hard", NULL, "token bucket: a hard cap", NULL),
    LIMIT("cpu.limit", "cpus", "CPU limit in CPUs, e.g. 1.5 (cpu.max)", "N"),
    LIMIT("cpu.weight", "cpu-weight", "CPU weight, 1-10000 (100: the default)", "W"),
    LIMIT("cpuset", "cpuset", "the CPUs it may run on, e.g. 0-1", "LIST"),
    LIMIT("cpuset.mems", NULL, "the memory nodes it may use", NULL),
    LIMIT("io.read-bps", NULL, "DEVICE BYTES per second", NULL),
    LIMIT("io.write-bps", NULL, "DEVICE BYTES per second", NULL),
    LIMIT("io.read-iops", NULL, "DEVICE operations per second", NULL),
    LIMIT("io.write-iops", NULL, "DEVICE operations per second", NULL),
    LIMIT("disk", "disk", "space on its tree, e.g. 10G (project quota or its own image)", "SIZE"),
    LIMIT("disk.inodes", "disk-inodes", "files on its tree, e.g. 200k", "N"),
    LIMIT("disk.reserved", NULL, "share of disk kept for its root, e.g. 5%", NULL),
    LIMIT("ipc.shmmax", NULL, "kernel.shmmax", NULL),
    LIMIT("ipc.shmall", NULL, "kernel.shmall", NULL),
    LIMIT("ipc.shmmni", NULL, "kernel.shmmni", NULL),
    LIMIT("ipc.msgmax", NULL, "kernel.msgmax", NULL),
    LIMIT("ipc.msgmnb", NULL, "kernel.msgmnb", NULL),
    LIMIT("ipc.msgmni", NULL, "kernel.msgmni", NULL),
    LIMIT("ipc.sem", NULL, "kernel.sem", NULL),
    {"limits", "as", set_rlimit, write_rlimits, VS_KEY_RLIMIT, NULL, "setrlimit as"},
    RLIMIT("core"),
    RLIMIT("cpu"),
    RLIMIT("data"),
    RLIMIT("fsize"),
    RLIMIT("locks"),
    RLIMIT("memlock"),
    RLIMIT("msgqueue"),
    RLIMIT("nice"),
    RLIMIT("nofile"),
    RLIMIT("nproc"),
    RLIMIT("rtprio"),
    RLIMIT("rttime"),
    RLIMIT("sigpending"),
    RLIMIT("stack"),

    {"security", "userns", set_security_flag, write_userns, 0, NULL, "a user namespace"},
    {"security", "capabilities.add", set_caps, write_caps_add, 0, NULL, "more capabilities"},
    {"security", "capabilities.host-wide", set_caps, write_caps_host, 0, NULL,
     "capabilities over the whole host"},
    {"security", "capabilities.drop", set_caps, write_caps_drop, 0, NULL, "fewer capabilities"},
    {"security", "seccomp", set_seccomp, write_seccomp, 0, NULL, "default, none or a file"},
    {"security", "allow-userns", set_security_flag, write_allow_userns, 0, NULL,
     "nested user namespaces"},
    {"security", "no-new-privs", set_security_flag, write_no_new_privs, 0, NULL,
     "PR_SET_NO_NEW_PRIVS"},

    {"mount", "bind", set_bind, write_binds, VS_KEY_MULTI, NULL, "SRC:DST[:ro][:idmap]"},

    {"unify", "exclude", set_exclude, write_excludes, VS_KEY_MULTI, NULL, "[+|-]/glob"},
};
const size_t vs_n_keys = ARRAY_SIZE(vs_keys);

/* Sections always written (with their defaults), the others only when they hold something. */
static bool always_written(const char *section)
{
        return streq(section, "guest") || streq(section, "net") || streq(section, "limits") ||
               streq(section, "security");
}

const VsKey *vs_key_find(const char *section, const char *name)
{
        for (size_t i = 0; i < vs_n_keys; i++)
                if (streq(vs_keys[i].section, section) && streq(vs_keys[i].name, name))
                        return &vs_keys[i];
        return NULL;
}

/* "a, b, c" of @section's keys (@rlimits: the resource limits alone, else the rest). */
static void known(const char *section, bool rlimits, char *buf, size_t size)
{
        size_t used = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < vs_n_keys && used < size; i++)
                if (streq(vs_keys[i].section, section) &&
                    !!(vs_keys[i].flags & VS_KEY_RLIMIT) == rlimits)
                        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                                 vs_keys[i].name);
}

int vs_key_set(VsGuestConfig *g, const char *section, const char *name, const char *value,
               char *msg, size_t msz)
{
        const VsKey *k = vs_key_find(section, name);
        /* a value is one line of text: what the file cannot hold, no key takes (fuzzing found
         * an init command with \r and \x01 that saved as a different one) */
        for (const unsigned char *c = (const unsigned char *)value; k && *c; c++)
                if ((*c < ' ' && *c != '\t') || *c == 0x7f)
                        BAD("a control character (0x%02x) in the value: say it in plain text", *c);
        /* "name = value" on one line of the file */
        if (k && strlen(name) + 3 + strlen(value) > VS_CONFIG_LINE_MAX)
                BAD("\"%s = VALUE\" is one line of the guest file: at most %d characters", name,
                    VS_CONFIG_LINE_MAX);
        if (k)
                return k->set(g, name, value, msg, msz);
        char list[1024], rl[512];
        bool any = false;
        for (size_t i = 0; i < vs_n_keys; i++)
                any |= streq(vs_keys[i].section, section);
        if (!any) {
                size_t used = 0;
                for (size_t i = 0; i < vs_n_keys; i++)
                        if (i == 0 || !streq(vs_keys[i].section, vs_keys[i - 1].section))
                                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                                         used ? ", " : "", vs_keys[i].section);
                BAD("unknown section [%s] (known: %s)", section, list);
        }
        known(section, false, list, sizeof list);
        known(section, true, rl, sizeof rl);
        BAD("unknown key (known: %s%s%s)", list, rl[0] ? ", and the rlimits " : "", rl);
}

int vs_keys_write(const VsGuestConfig *g, FILE *f)
{
        fprintf(f, "# vserver guest %s\n", g->name);
        for (size_t i = 0; i < vs_n_keys;) {
                const char *section = vs_keys[i].section;
                char *text = NULL;
                size_t len = 0;
                FILE *m = open_memstream(&text, &len);
                if (!m)
                        return -ENOMEM;
                for (; i < vs_n_keys && streq(vs_keys[i].section, section); i++)
                        if (vs_keys[i].write)
                                vs_keys[i].write(g, m);
                fclose(m);
                if (len || always_written(section))
                        fprintf(f, "%s[%s]\n%s", streq(section, "guest") ? "" : "\n", section,
                                text ? text : "");
                free(text);
        }
        return ferror(f) ? -EIO : 0;
}
