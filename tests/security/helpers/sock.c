/* socket(2) for a few families: "FAMILY ok" or "FAMILY strerror". */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
        static const int fams[] = {1, 2, 10, 16, 40, 38, 29, 31};
        for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
                int type = fams[i] == 16 ? SOCK_RAW : fams[i] == 38 ? SOCK_SEQPACKET : SOCK_STREAM;
                int s = socket(fams[i], type, 0);
                if (s < 0 && errno != EAFNOSUPPORT && errno != EPERM)
                        s = socket(fams[i], SOCK_DGRAM, 0);
                printf("%d %s\n", fams[i], s >= 0 ? "ok" : strerror(errno));
                if (s >= 0)
                        close(s);
        }
        return 0;
}
