/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What host tools read of a guest's processes: /proc/PID/stat (its command
 * is any bytes the process chose, parentheses and newlines too) and the
 * NSpid line of /proc/PID/status.  The first byte picks one.
 */
#include "../../src/lib/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        char *s = fuzz_str(data + 1, size - 1);
        VsProcStat st;
        long ids[32];
        if (data[0] & 1)
                (void)vs_proc_stat_parse(s, &st);
        else if (vs_proc_nspid_parse(s, ids, 32) > 32)
                abort();
        free(s);
        return 0;
}
