/* async_many.c: start many connects at once without a thread each: ImapAsyncConnect
 * returns at once and the library's single loop thread runs every connect, calling back
 * when each is ready or has failed. Then the handles are used as ordinary ones.
 *
 *   usage: IMAPWIRE_PASSWORD=... async_many HOST PORT USER [COUNT (default 100, max 1000)]
 */
#define _POSIX_C_SOURCE 200809L       /* nanosleep under -std=c11 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <imapwire/imapwire.h>

#define MAX_CONNECTS 1000

/* Written by the callback on the loop thread, read by main: atomics, no lock needed. */
static int done, failed;

/* Runs on the library's loop thread: keep it short and never block in it. */
static VOID on_event(HCLIENT h, UINT event, DWORD error, LPVOID param)
{
    (void)h;
    (void)param;
    if (event != IMAP_EVENT_CONNECT)
        return;                        /* IMAP_EVENT_DISCONNECT: the server went away later */
    if (error != ST_ERROR_NONE)
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&done, 1, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
    static HCLIENT h[MAX_CONNECTS];
    const char *password = getenv("IMAPWIRE_PASSWORD");
    int i, n, d, f, waited_ms = 0, logins = 0;

    n = argc > 4 ? atoi(argv[4]) : 100;
    if (argc < 4 || argc > 5 || password == NULL || n < 1 || n > MAX_CONNECTS) {
        fprintf(stderr, "usage: IMAPWIRE_PASSWORD=... %s HOST PORT USER [COUNT]\n", argv[0]);
        return 2;
    }
    if (!ImapInitialize(NULL, NULL))
        return 1;
    for (i = 0; i < n; i++) {
        /* Fails at once only for bad arguments; network errors arrive as events. */
        h[i] = ImapAsyncConnect(argv[1], (UINT)strtoul(argv[2], NULL, 10), 10,
                                IMAP_OPTION_NONE, NULL, on_event, NULL);
        if (h[i] == INVALID_CLIENT) {
            fprintf(stderr, "ImapAsyncConnect %d failed: error %u\n", i, (unsigned)ImapGetLastError());
            n = i;
            break;
        }
    }
    /* This thread is free meanwhile; here it only waits, bounded (30 s). */
    while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < n && waited_ms < 30000) {
        struct timespec ten_ms = { 0, 10000000 };
        nanosleep(&ten_ms, NULL);
        waited_ms += 10;
    }
    /* A ready handle belongs to the thread that started it: log in from here. One at a
     * time, each disconnected before the next logs in: a stock Dovecot lets one user hold
     * only 10 logged-in connections from one address (mail_max_userip_connections), so
     * 100 logins held at once would fail past the tenth. */
    for (i = 0; i < n; i++) {
        if (ImapLogin(h[i], IMAP_AUTH_DEFAULT, argv[3], password) == 0)
            logins++;
        ImapDisconnect(h[i]);          /* also right for a failed or unfinished connect */
    }
    d = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
    f = __atomic_load_n(&failed, __ATOMIC_RELAXED);
    printf("%d connects: %d done, %d failed, %d logged in, after about %d ms\n",
           n, d, f, logins, waited_ms);
    ImapUninitialize();
    return d == n && f == 0 && logins == n && n > 0 ? 0 : 1;
}
