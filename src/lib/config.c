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

#include "disk.h"
#include "idmap.h"
#include "keys.h"
#include "limits.h"
#include "pattern.h"
#include "rlimit.h"
#include "util.h"

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
        h->delegate = true;
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

/*
 * inih hands each line a buffer of its own size (200 bytes in Debian's
 * libinih) and reads what does not fit as the next line: fail on such a
 * line instead, saying so (VS_CONFIG_LINE_MAX; vs_key_set refuses values
 * that would make one).
 */
static char *read_line(char *str, int num, void *stream)
{
        Reader *r = stream;
        r->line++;
        size_t len;
        if (r->file) {
                if (!fgets(str, num, r->file))
                        return NULL;
                len = strlen(str);
        } else {
                if (!r->text || !*r->text)
                        return NULL;
                const char *nl = strchr(r->text, '\n');
                len = nl ? (size_t)(nl - r->text) + 1 : strlen(r->text);
                if (len >= (size_t)num)
                        len = (size_t)num - 1;
                memcpy(str, r->text, len);
                str[len] = '\0';
                r->text += len;
        }
        /* a line cut by the buffer has num - 1 characters and no newline: more than max */
        int max = num - 2 < VS_CONFIG_LINE_MAX ? num - 2 : VS_CONFIG_LINE_MAX;
        size_t chars = len && str[len - 1] == '\n' ? len - 1 : len;
        if (chars > (size_t)max) {
                if (!r->failed)
                        vs_error_input(r->err, "%s:%d: a line holds at most %d characters",
                                       r->label, r->line, max);
                r->failed = 1;
                return NULL;
        }
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
                if (vs_parse_bool(v, &h->bridge_nat) < 0)
                        return bad(r, key, "\"%s\" is not yes or no", v);
        } else if (streq(name, "unify-exclude")) {
                char why[160];
                char copy[sizeof h->unify_exclude], *save = NULL;
                size_t have = strlen(h->unify_exclude);
                /* a line holds VS_CONFIG_LINE_MAX: each line of the key adds its patterns */
                if (have + 1 + strlen(v) >= sizeof copy)
                        return bad(r, key, "too long (at most 1023 characters on all its lines)");
                snprintf(copy, sizeof copy, "%s", v);
                for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
                        if (vs_pattern_check(t, why, sizeof why) < 0)
                                return bad(r, key, "%s", why);
                snprintf(h->unify_exclude + have, sizeof h->unify_exclude - have, "%s%s",
                         have ? " " : "", v);
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
                if (vs_parse_bool(v, &h->userns) < 0)
                        return bad(r, key, "\"%s\" is not yes or no", v);
        } else if (streq(name, "delegate")) {
                if (vs_parse_bool(v, &h->delegate) < 0)
                        return bad(r, key, "\"%s\" is not yes or no", v);
        } else if (streq(name, "userns-ids")) {
                if (vs_idmap_parse_pool(v, &h->userns_first, &h->userns_last) < 0)
                        return bad(r, key,
                                   "\"%s\" is not a pool of host ids (say FIRST-LAST, from "
                                   "65536 up, room for at least 65536: e.g. "
                                   "1073741824-1879048191)",
                                   v);
        } else if (streq(name, "disk-limits")) {
                VsDiskKind k;
                if (vs_disk_kind_parse(v, &k) < 0)
                        return bad(r, key,
                                   "\"%s\" is not auto, project or image (auto: project quotas "
                                   "where the filesystem has them, else an image per guest)",
                                   v);
                h->disk_limits = (int)k;
        } else {
                return bad(r, key,
                           "unknown key (known: cgroup-parent, context-range, debian-mirror, "
                           "debian-suite, net-device, bridge, bridge-address, bridge-nat, "
                           "unify-exclude, console-log-size, unix-guard-cgroup, userns, "
                           "userns-ids, delegate, disk-limits)");
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
            .views = true,
            .delegate = true,
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

static int guest_handler(void *user, const char *section, const char *name, const char *value)
{
        Reader *r = user;
        VsGuestConfig *g = r->target;
        char key[128], v[PATH_MAX], msg[VS_ERROR_MSG_MAX - 128];
        snprintf(key, sizeof key, "%s.%s", section, name);
        snprintf(v, sizeof v, "%s", value ? value : "");
        strip_comment(v);
        const VsKey *k = vs_key_find(section, name);
        if (!k || !(k->flags & VS_KEY_MULTI)) {
                for (int i = 0; i < r->n_seen; i++)
                        if (streq(r->seen[i], key))
                                return bad(r, key, "set twice (keep one line)");
                if (r->n_seen < (int)ARRAY_SIZE(r->seen) && strlen(key) < sizeof r->seen[0])
                        snprintf(r->seen[r->n_seen++], sizeof r->seen[0], "%s", key);
        }
        if (vs_key_set(g, section, name, v, msg, sizeof msg) < 0)
                return bad(r, key, "%s", msg);
        return 1;
}

int vs_guest_config_check(const VsGuestConfig *g, const char *label, VsError *err)
{
        char msg[VS_ERROR_MSG_MAX - 128];
        if (vs_limits_check(&g->limits, msg, sizeof msg) < 0)
                return vs_error_input(err, "%s: [limits]: %s", label, msg);
        /* named here; one behind a link (/sbin/init) is found at start, in the tree */
        size_t cmd = strcspn(g->init, " \t");
        const char *slash = memrchr(g->init, '/', cmd);
        if (!g->delegate && slash && cmd - (size_t)(slash + 1 - g->init) == 7 &&
            strncmp(slash + 1, "systemd", 7) == 0)
                return vs_error_input(err,
                                      "%s: [guest]: init = %.*s: systemd must make cgroups of its "
                                      "own (say delegate = yes)",
                                      label, (int)cmd, g->init);
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
        if (vs_key_set(g, sec, dot + 1, value, msg, sizeof msg) < 0)
                return vs_error_input(err, "%s: %s", where, msg);
        return 0;
}

int vs_guest_config_write(const VsGuestConfig *g, FILE *f)
{
        return vs_keys_write(g, f);
}

/* @text to @path: a temporary file beside it, fsync (with @sync), rename. */
static int write_atomic(const char *path, const char *text, size_t len, bool sync, VsError *err)
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
        if (sync && fsync(fd) < 0) {
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

static int config_save(const VsGuestConfig *g, const char *path, bool sync, VsError *err)
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
        r = write_atomic(path, text, len, sync, err);
        free(text);
        return r;
}

int vs_guest_config_save(const VsGuestConfig *g, const char *path, VsError *err)
{
        return config_save(g, path, true, err);
}

int vs_guest_config_note(const VsGuestConfig *g, const char *path, VsError *err)
{
        return config_save(g, path, false, err);
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
                r = write_atomic(path, text, strlen(text), true, err);
        free(text);
        return r;
}
