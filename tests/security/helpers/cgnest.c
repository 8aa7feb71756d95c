/*
 * A guest's root in a user namespace of its own making (allow-userns), its
 * own root mapped to itself, then a cgroup namespace and a mount namespace
 * of that one's: mounts the cgroup hierarchy argv[1] ("cgroup2", or v1
 * options such as "pids") and writes argv[3] into its file argv[2].  Prints
 * one line, WROTE if the write went through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write(fd, text, strlen(text)) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int main(int argc, char **argv)
{
        if (argc != 4)
                return 2;
        if (unshare(CLONE_NEWUSER) < 0) {
                printf("unshare user: %s\n", strerror(errno));
                return 0;
        }
        (void)put("/proc/self/setgroups", "deny");
        (void)put("/proc/self/uid_map", "0 0 1");
        (void)put("/proc/self/gid_map", "0 0 1");
        if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0) {
                printf("unshare mount, cgroup: %s\n", strerror(errno));
                return 0;
        }
        mkdir("/vs-out/cg", 0755);
        int r = strcmp(argv[1], "cgroup2") == 0 ? mount("none", "/vs-out/cg", "cgroup2", 0, NULL)
                                                : mount("none", "/vs-out/cg", "cgroup", 0, argv[1]);
        if (r < 0) {
                printf("mount %s: %s\n", argv[1], strerror(errno));
                return 0;
        }
        char path[256];
        snprintf(path, sizeof path, "/vs-out/cg/%s", argv[2]);
        r = put(path, argv[3]);
        printf(r < 0 ? "write %s: %s\n" : "WROTE %s%s\n", path, r < 0 ? strerror(-r) : "");
        return 0;
}
