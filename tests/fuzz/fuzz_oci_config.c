/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.json as an image or a client writes it (vserver-runc create), its
 * seccomp profile compiled as create does; the same bytes as an exec
 * --process file and as update --resources.
 */
#include <assert.h>
#include <string.h>

#include <json-c/json.h>

#include "../../src/lib/oci.h"
#include "../../src/lib/oci_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        VsError err = {0};
        VsOciConfig *c = calloc(1, sizeof *c);
        if (!c)
                return 0;
        if (vs_oci_config_parse(text, size, c, &err) == 0) {
                /* what create relies on, whatever the input */
                assert(c->root_path && c->root_path[0]);
                assert(c->n_mounts <= VS_OCI_MAX_MOUNTS);
                for (int i = 0; i < c->n_mounts; i++)
                        assert(c->mounts[i].destination[0] == '/');
                assert(!c->has_process || (c->process.args && c->process.args[0][0]));
                for (int i = 0; i < c->n_masked; i++)
                        assert(c->masked[i][0] == '/');
                VsSeccomp *f = NULL;
                bool notify;
                if (vs_oci_seccomp_build(c->seccomp, &f, &notify, &err) == 0)
                        vs_seccomp_free(f);
                vs_oci_config_free(c);
        } else {
                assert(err.msg[0]);
        }
        free(c);
        VsOciProcess p;
        struct json_object *j = NULL;
        if (vs_oci_process_parse(text, size, &p, &j, &err) == 0) {
                assert(p.args && p.args[0]);
                vs_oci_process_free(&p);
                json_object_put(j);
        }
        VsLimits l;
        vs_limits_init(&l);
        (void)vs_oci_resources_parse(text, size, &l, &err);
        return 0;
}
