/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "caps.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

#define C(x) [CAP_##x] = #x
static const char *const cap_names[] = {
    C(CHOWN),
    C(DAC_OVERRIDE),
    C(DAC_READ_SEARCH),
    C(FOWNER),
    C(FSETID),
    C(KILL),
    C(SETGID),
    C(SETUID),
    C(SETPCAP),
    C(LINUX_IMMUTABLE),
    C(NET_BIND_SERVICE),
    C(NET_BROADCAST),
    C(NET_ADMIN),
    C(NET_RAW),
    C(IPC_LOCK),
    C(IPC_OWNER),
    C(SYS_MODULE),
    C(SYS_RAWIO),
    C(SYS_CHROOT),
    C(SYS_PTRACE),
    C(SYS_PACCT),
    C(SYS_ADMIN),
    C(SYS_BOOT),
    C(SYS_NICE),
    C(SYS_RESOURCE),
    C(SYS_TIME),
    C(SYS_TTY_CONFIG),
    C(MKNOD),
    C(LEASE),
    C(AUDIT_WRITE),
    C(AUDIT_CONTROL),
    C(SETFCAP),
    C(MAC_OVERRIDE),
    C(MAC_ADMIN),
    C(SYSLOG),
    C(WAKE_ALARM),
    C(BLOCK_SUSPEND),
    C(AUDIT_READ),
    C(PERFMON),
    C(BPF),
    C(CHECKPOINT_RESTORE),
};
#undef C

#define BIT(c) ((VsCaps)1 << (c))

VsCaps vs_caps_host_wide(void)
{
        static const int caps[] = {
            CAP_SYS_TIME,      CAP_SYS_MODULE,   CAP_SYS_RAWIO,      CAP_SYS_BOOT,  CAP_MAC_ADMIN,
            CAP_MAC_OVERRIDE,  CAP_SYSLOG,       CAP_WAKE_ALARM,     CAP_BPF,       CAP_PERFMON,
            CAP_AUDIT_CONTROL, CAP_SYS_PACCT,    CAP_SYS_TTY_CONFIG, CAP_SYS_ADMIN, CAP_SYS_PTRACE,
            CAP_BLOCK_SUSPEND, CAP_SYS_RESOURCE, CAP_NET_ADMIN};
        VsCaps m = 0;
        for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
                m |= (VsCaps)1 << caps[i];
        return m;
}

VsCaps vs_caps_userns(void)
{
        static const int host_only[] = {
            CAP_SYS_TIME,      CAP_SYS_MODULE,      CAP_SYS_RAWIO,     CAP_MAC_ADMIN,
            CAP_MAC_OVERRIDE,  CAP_SYSLOG,          CAP_WAKE_ALARM,    CAP_BPF,
            CAP_PERFMON,       CAP_AUDIT_CONTROL,   CAP_AUDIT_READ,    CAP_SYS_PACCT,
            CAP_BLOCK_SUSPEND, CAP_LINUX_IMMUTABLE, CAP_SYS_TTY_CONFIG};
        VsCaps m = BIT(ARRAY_SIZE(cap_names)) - 1;
        for (size_t i = 0; i < ARRAY_SIZE(host_only); i++)
                m &= ~BIT(host_only[i]);
        return m;
}

VsCaps vs_caps_default(void)
{
        return BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_FOWNER) |
               BIT(CAP_FSETID) | BIT(CAP_KILL) | BIT(CAP_SETGID) | BIT(CAP_SETUID) |
               BIT(CAP_SETPCAP) | BIT(CAP_SETFCAP) | BIT(CAP_NET_BIND_SERVICE) |
               BIT(CAP_SYS_CHROOT) | BIT(CAP_AUDIT_WRITE);
}

const char *vs_caps_name(int cap)
{
        if (cap < 0 || (size_t)cap >= ARRAY_SIZE(cap_names))
                return NULL;
        return cap_names[cap];
}

int vs_caps_from_name(const char *name, VsCaps *ret)
{
        if (!name)
                return -EINVAL;
        if (strncasecmp(name, "CAP_", 4) == 0)
                name += 4;
        if (strcasecmp(name, "ALL") == 0) {
                *ret = BIT(ARRAY_SIZE(cap_names)) - 1;
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
                if (cap_names[i] && strcasecmp(name, cap_names[i]) == 0) {
                        *ret = BIT(i);
                        return 0;
                }
        return -EINVAL;
}

const char *vs_caps_format(VsCaps caps, char *buf, unsigned long size)
{
        size_t used = 0;

        if (size == 0)
                return buf;
        buf[0] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++) {
                if (!(caps & BIT(i)))
                        continue;
                int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "", cap_names[i]);
                if (n < 0 || (size_t)n >= size - used)
                        break;
                used += (size_t)n;
        }
        return buf;
}

/* The kernel may know more caps than we have names for; read its last one. */
static int last_cap(void)
{
        char buf[16];
        unsigned long long v;

        if (vs_read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", buf, sizeof buf) > 0) {
                buf[strcspn(buf, "\n")] = '\0';
                if (vs_parse_u64(buf, &v) == 0 && v < 64)
                        return (int)v;
        }
        return (int)ARRAY_SIZE(cap_names) - 1;
}

static int drop_bounding(VsCaps keep, VsError *err)
{
        int last = last_cap();
        for (int c = 0; c <= last; c++) {
                if (keep & BIT(c))
                        continue;
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                        return vs_error(err, errno, "drop capability %s from the bounding set",
                                        vs_caps_name(c) ? vs_caps_name(c) : "?");
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return vs_error(err, errno, "clear ambient capabilities");
        return 0;
}

static int set_caps(VsCaps effective, VsCaps permitted, VsCaps inheritable, VsError *err)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2] = {0};
        for (int i = 0; i < 2; i++) {
                data[i].effective = (uint32_t)(effective >> (32 * i));
                data[i].permitted = (uint32_t)(permitted >> (32 * i));
                data[i].inheritable = (uint32_t)(inheritable >> (32 * i));
        }
        if (syscall(SYS_capset, &hdr, data) < 0)
                return vs_error(err, errno, "set capabilities");
        return 0;
}

int vs_caps_apply(VsCaps caps, VsError *err)
{
        int r = drop_bounding(caps, err);
        return r < 0 ? r : set_caps(caps, caps, caps, err);
}

int vs_cred_apply(const VsCred *c, VsError *err)
{
        int r = drop_bounding(c->bounding, err);
        if (r < 0)
                return r;
        /* what is not in the bounding set cannot be kept: the kernel would refuse the capset */
        VsCaps permitted = c->permitted & c->bounding;
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return vs_error(err, errno, "keep capabilities across the user change");
        if (setgroups((size_t)c->n_groups, c->groups) < 0 && !(errno == EPERM && !c->n_groups))
                return vs_error(err, errno, "set the supplementary groups");
        if (setresgid(c->gid, c->gid, c->gid) < 0)
                return vs_error(err, errno, "set group id %u", (unsigned)c->gid);
        if (setresuid(c->uid, c->uid, c->uid) < 0)
                return vs_error(err, errno, "set user id %u", (unsigned)c->uid);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return vs_error(err, errno, "clear keep-capabilities");
        r = set_caps(c->effective & permitted, permitted, c->inheritable, err);
        if (r < 0)
                return r;
        /* the kernel raises only what is permitted and inheritable too (runc skips the rest) */
        VsCaps ambient = c->ambient & permitted & c->inheritable;
        int last = last_cap();
        for (int cap = 0; cap <= last; cap++)
                if ((ambient & BIT(cap)) &&
                    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                        return vs_error(err, errno, "raise ambient capability CAP_%s",
                                        vs_caps_name(cap) ? vs_caps_name(cap) : "?");
        return 0;
}
