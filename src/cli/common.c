/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../lib/util.h"
#include "cli.h"

int host_load(Host *h, const char *root_dir, const char *verb)
{
        VsError err = {0};
        if (!root_dir)
                root_dir = getenv("VSERVER_ROOT");
        /* an installation elsewhere must be there: only build makes one */
        struct stat st;
        if (root_dir && *root_dir && !streq(verb, "build") && !streq(verb, "run") &&
            stat(root_dir, &st) < 0) {
                fail(0, verb,
                     "no installation at %s (%m; build makes one, or check --root-dir "
                     "and VSERVER_ROOT)",
                     root_dir);
                return -1;
        }
        if (vs_paths_init(&h->paths, root_dir, &err) < 0 ||
            (vs_host_config_init(&h->conf),
             vs_host_config_load(&h->conf, h->paths.host_conf, &err)) < 0) {
                fail_error(0, verb, &err);
                return -1;
        }
        vs_host_config_own_cgroup(&h->conf, h->paths.root);
        h->cgroup_parent = getenv("VSERVER_CGROUP_PARENT");
        if (h->cgroup_parent && !*h->cgroup_parent)
                h->cgroup_parent = NULL;
        if (h->cgroup_parent && !vs_cgroup_path_valid(h->cgroup_parent)) {
                fail(0, verb, "VSERVER_CGROUP_PARENT \"%s\" is not a cgroup path",
                     h->cgroup_parent);
                return -1;
        }
        if (!h->cgroup_parent)
                h->cgroup_parent = h->conf.cgroup_parent;
        /* tests keep the host-side unix guard on their own cgroup */
        const char *guard = getenv("VSERVER_UNIX_GUARD_CGROUP");
        if (guard && *guard) {
                if (guard[0] != '/' || (guard[1] && !vs_cgroup_path_valid(guard)) ||
                    strlen(guard) >= sizeof h->conf.unix_guard_cgroup) {
                        fail(0, verb,
                             "VSERVER_UNIX_GUARD_CGROUP \"%s\" is not an absolute cgroup path",
                             guard);
                        return -1;
                }
                snprintf(h->conf.unix_guard_cgroup, sizeof h->conf.unix_guard_cgroup, "%s", guard);
        }
        return 0;
}

int guest_load(VsGuest *g, const Host *h, const char *name, const char *verb, int *ret_code)
{
        VsError err = {0};
        if (vs_guest_load(g, &h->paths, &h->conf, h->cgroup_parent, name, &err) < 0) {
                *ret_code = fail_error(EXIT_FAILURE, verb, &err);
                return -1;
        }
        return 0;
}

int guest_lock(const VsGuest *g, const char *verb, int *ret_fd)
{
        VsError err = {0};
        if (vs_guest_lock(g, ret_fd, &err) < 0) {
                fail_error(0, verb, &err);
                return -1;
        }
        return 0;
}

void json_print(struct json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
}

void note_io_v1(const char *verb, const VsLimits *l)
{
        if (vs_limits_io_writes_v1(l))
                fprintf(stderr,
                        "%s: %s: note: this host's I/O controller is cgroup v1 blkio, which "
                        "throttles only direct I/O: buffered writes go out through the page "
                        "cache unthrottled (cgroup v2's io.max throttles both)\n",
                        vs_program, verb);
}
