/* clock.c: the monotonic clock every deadline in the library is measured on.
 * Wall-clock time is never used for waits, so a clock change cannot stretch a timeout. */
#include <time.h>
#include "runtime.h"

int64_t iw_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t iw_now_ms(void)
{
    return iw_now_us() / 1000;
}
