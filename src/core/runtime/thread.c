/* thread.c: thread identity for handle ownership (ImapAttachThread and friends).
 * Ids are kernel thread ids, so any thread can name another by the id it reports. */
#include <sys/syscall.h>
#include <unistd.h>
#include "runtime.h"

static _Thread_local DWORD iw_tid;

DWORD iw_thread_id(void)
{
    if (iw_tid == 0)
        iw_tid = (DWORD)syscall(SYS_gettid);
    return iw_tid;
}

DWORD ImapGetCurrentThreadId(VOID)
{
    return iw_thread_id();
}
