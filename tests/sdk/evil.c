/* evil.c: a shared object whose constructor leaves a mark: no transport string may ever
 * make the library load it; only ImapLoadPlugin with its explicit path may. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Runs at dlopen time, before any plugin check: exactly what an attacker's file does. */
__attribute__((constructor)) static void evil_mark(void)
{
    const char *path = getenv("IW_EVIL_MARKER");
    int fd;
    if (path == NULL)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)!write(fd, "loaded\n", 7);
        close(fd);
    }
}
