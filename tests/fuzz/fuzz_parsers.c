/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The small parsers every command line and guest file goes through: the
 * first byte picks one, the rest is its input.  Where a parser has a
 * printer, what it parsed must print as something it parses again to the
 * same value.
 */
#include <stdio.h>

#include "../../src/lib/caps.h"
#include "../../src/lib/config.h"
#include "../../src/lib/net.h"
#include "../../src/lib/parse.h"
#include "../../src/lib/pattern.h"
#include "../../src/lib/rlimit.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        char *s = fuzz_str(data + 1, size - 1), why[256], buf[512];
        unsigned long long v;
        uint64_t u;
        bool set[256];
        VsCaps caps;
        VsNetAddr a, a2;
        VsNetRoute rt, rt2;
        VsRlimit rl;
        VsError err = {0};
        switch (data[0] % 14) {
        case 0:
                (void)vs_parse_size(s, &v);
                break;
        case 1:
                (void)vs_parse_count(s, &v);
                break;
        case 2:
                (void)vs_parse_duration_us(s, &u);
                break;
        case 3:
                (void)vs_parse_milli(s, &v);
                break;
        case 4:
                if (vs_cpulist_valid(s))
                        (void)vs_cpulist_fill(s, set, 256);
                break;
        case 5: {
                int sig = vs_signal_from_name(s);
                if (sig > 0 && vs_signal_from_name(vs_signal_name(sig, buf, sizeof buf)) != sig)
                        abort();
                break;
        }
        case 6:
                if (vs_caps_from_name(s, &caps) == 0)
                        (void)vs_caps_format(caps, buf, sizeof buf);
                break;
        case 7:
                if (vs_net_addr_parse(s, &a, why, sizeof why) == 0) {
                        vs_net_addr_format(&a, buf, sizeof buf);
                        if (vs_net_addr_parse(buf, &a2, why, sizeof why) != 0 ||
                            !vs_net_addr_same(&a, &a2) || a.prefix != a2.prefix) {
                                fprintf(stderr, "\"%s\" printed as \"%s\"\n", s, buf);
                                abort();
                        }
                }
                break;
        case 8:
                if (vs_net_route_parse(s, &rt, why, sizeof why) == 0) {
                        vs_net_route_format(&rt, buf, sizeof buf);
                        if (vs_net_route_parse(buf, &rt2, why, sizeof why) != 0) {
                                fprintf(stderr, "route \"%s\" printed as \"%s\"\n", s, buf);
                                abort();
                        }
                }
                break;
        case 9:
                (void)vs_rlimit_parse(s, &rl, &err);
                break;
        case 10:
                (void)vs_parse_bool(s, &set[0]);
                break;
        case 11:
                (void)vs_hostname_valid(s);
                break;
        case 12:
                (void)vs_pattern_check(s, why, sizeof why);
                break;
        default:
                (void)vs_parse_u64(s, &v);
                break;
        }
        free(s);
        return 0;
}
