/* life.c: whether the library is initialized, readable from any layer: the counter
 * lives with its readers here, api/init.c is the only writer. */
#include "runtime.h"

static int iw_life_count;

int iw_initialized(void)
{
    return __atomic_load_n(&iw_life_count, __ATOMIC_ACQUIRE) > 0;
}

void iw_set_initialized(int count)
{
    __atomic_store_n(&iw_life_count, count, __ATOMIC_RELEASE);
}
