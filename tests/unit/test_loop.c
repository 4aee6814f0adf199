/* test_loop.c: the loop thread on its own: tasks stepped until they finish and released
 * on the loop thread, calls run there, owners' tasks released, and shutdown releases all. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runtime/loop.h"

typedef struct counted {
    iw_task task;
    int     steps, finish_after;   /* written by the loop thread only */
    int     released, released_on_loop;
} counted;

static void counted_pollset(iw_task *t, imapwire_pollset *ps)
{
    (void)t;
    imapwire_pollset_wakeup(ps, iw_now_ms() + 1);   /* no fd: come back at once */
}

static int counted_step(iw_task *t)
{
    counted *c = (counted *)t;
    return ++c->steps >= c->finish_after;
}

static void counted_release(iw_task *t)
{
    counted *c = (counted *)t;
    c->released_on_loop = iw_loop_is_current();
    __atomic_store_n(&c->released, 1, __ATOMIC_RELEASE);
}

static void counted_init(counted *c, int finish_after, void *owner)
{
    memset(c, 0, sizeof *c);
    c->task.pollset = counted_pollset;
    c->task.step = counted_step;
    c->task.release = counted_release;
    c->task.owner = owner;
    c->finish_after = finish_after;
}

static int wait_released(counted *c)
{
    int i;
    for (i = 0; i < 2000; i++) {               /* 2 s at most */
        struct timespec ts = { 0, 1000000 };
        if (__atomic_load_n(&c->released, __ATOMIC_ACQUIRE))
            return 1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void teardown(void)
{
    iw_loop_shutdown();
}

START_TEST(tasks_run_to_completion)
{
    counted a, b;
    counted_init(&a, 3, NULL);
    counted_init(&b, 50, NULL);
    ck_assert_int_eq(iw_loop_add(&a.task), 0);
    ck_assert_int_eq(iw_loop_add(&b.task), 0);
    ck_assert(wait_released(&a));
    ck_assert(wait_released(&b));
    ck_assert_int_eq(a.steps, 3);
    ck_assert_int_eq(b.steps, 50);
    ck_assert(a.released_on_loop && b.released_on_loop);
}
END_TEST

static void note_thread(void *arg)
{
    *(int *)arg = iw_loop_is_current() ? 1 : -1;
}

START_TEST(calls_run_on_the_loop)
{
    int where = 0;
    ck_assert(!iw_loop_is_current());
    ck_assert_int_eq(iw_loop_call(note_thread, &where), 0);
    ck_assert_int_eq(where, 1);
}
END_TEST

static void release_owner(void *owner)
{
    iw_loop_release_owned(owner);
}

START_TEST(owner_tasks_released)
{
    static int owner_a, owner_b;
    counted a, b;
    counted_init(&a, 1000000, &owner_a);        /* would run for a long time */
    counted_init(&b, 1000000, &owner_b);
    ck_assert_int_eq(iw_loop_add(&a.task), 0);
    ck_assert_int_eq(iw_loop_add(&b.task), 0);
    ck_assert_int_eq(iw_loop_call(release_owner, &owner_a), 0);
    ck_assert(__atomic_load_n(&a.released, __ATOMIC_ACQUIRE));
    ck_assert(!__atomic_load_n(&b.released, __ATOMIC_ACQUIRE));
    iw_loop_shutdown();                          /* what is left is released there */
    ck_assert(b.released);
    ck_assert(b.released_on_loop);
}
END_TEST

START_TEST(restarts_after_shutdown)
{
    counted a;
    iw_loop_shutdown();                          /* not running: a no-op */
    counted_init(&a, 2, NULL);
    ck_assert_int_eq(iw_loop_add(&a.task), 0);
    ck_assert(wait_released(&a));
    iw_loop_shutdown();
    counted_init(&a, 2, NULL);
    ck_assert_int_eq(iw_loop_add(&a.task), 0);
    ck_assert(wait_released(&a));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, tasks_run_to_completion);
    tcase_add_test(tc, calls_run_on_the_loop);
    tcase_add_test(tc, owner_tasks_released);
    tcase_add_test(tc, restarts_after_shutdown);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
