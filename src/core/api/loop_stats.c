/* loop_stats.c: ImapGetLoopStatistics, the extension that shows what the library's loop
 * thread costs: its tasks, its turns and the longest time it was busy with one of them. */
#include "../runtime/loop.h"

BOOL ImapGetLoopStatistics(LPIMAPLOOPSTATS lpStats, BOOL bReset)
{
    unsigned long tasks, turns, longest;
    if (!iw_initialized()) {
        iw_set_error(ST_ERROR_NOT_INITIALIZED);
        return FALSE;
    }
    if (lpStats == NULL || lpStats->dwSize < sizeof *lpStats) {
        iw_set_error(ST_ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    iw_loop_stats(&tasks, &turns, &longest, bReset != FALSE);
    lpStats->dwTasks = (DWORD)tasks;
    lpStats->dwTurns = (DWORD)turns;
    lpStats->dwLongestStepUs = longest > 0xffffffffUL ? 0xffffffffu : (DWORD)longest;
    return TRUE;
}
