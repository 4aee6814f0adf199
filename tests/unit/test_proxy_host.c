/* test_proxy_host.c: the proxy plugins' shared code (socks5 here) against a fake host API,
 * as a plugin sees the library: which hop it opens, and a library too old to have hops. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <imapwire/transport.h>
#include "../../plugins/common/proxy.h"

/* What IMAPWIRE_PLUGIN_DEFINE wrote in socks5.c, linked in here. */
int imapwire_plugin_init(const imapwire_host_api *host);
extern const unsigned imapwire_plugin_abi;

static const imapwire_transport_type *registered;
static char hop_host[300];
static unsigned hop_port;
static int hops_open, hop_calls_beyond_size;

static int fake_register(const imapwire_transport_type *t)
{
    registered = t;
    return 0;
}

static void fake_trace(imapwire_layer *l, const char *fmt, ...)
{
    (void)l;
    (void)fmt;
}

static int64_t fake_now(void)
{
    return 1;
}

static void fake_mark(imapwire_layer *l, int mark)
{
    (void)l;
    (void)mark;
}

/* one static hop: its address is all the plugin keeps */
static struct imapwire_hop { int unused; } the_hop;

static int fake_hop_open(imapwire_layer *l, const char *host, unsigned port, imapwire_hop **hop)
{
    (void)l;
    snprintf(hop_host, sizeof hop_host, "%s", host);
    hop_port = port;
    hops_open++;
    *hop = &the_hop;
    return 0;
}

static void fake_hop_free(imapwire_hop *hop)
{
    if (hop != NULL)
        hops_open--;
}

/* What a 1.0 library's struct would have past its end: never to be called. */
static int stale_hop_open(imapwire_layer *l, const char *host, unsigned port, imapwire_hop **hop)
{
    (void)l;
    (void)host;
    (void)port;
    (void)hop;
    hop_calls_beyond_size++;
    return 0;
}

static void stale_hop_free(imapwire_hop *hop)
{
    (void)hop;
    hop_calls_beyond_size++;
}

static imapwire_host_api host;
static imapwire_layer layer;
static imapwire_endpoint ep = { "imap.example.test", 143, 1000, NULL, NULL };

static void setup(void)
{
    memset(&host, 0, sizeof host);
    host.abi_version = IMAPWIRE_TRANSPORT_ABI;
    host.struct_size = sizeof host;
    host.register_transport = fake_register;
    host.trace = fake_trace;
    host.now_ms = fake_now;
    host.mark = fake_mark;
    host.hop_open = fake_hop_open;
    host.hop_free = fake_hop_free;
    hop_host[0] = '\0';
    hop_port = 0;
    hops_open = hop_calls_beyond_size = 0;
    registered = NULL;
    ck_assert_int_eq(imapwire_plugin_init(&host), 0);
    ck_assert_ptr_nonnull(registered);
    ck_assert_str_eq(registered->name, "socks5");
}

/* A layer as the core makes one: zeroed ctx, the endpoint, the host. */
static int create(const char *args)
{
    memset(&layer, 0, sizeof layer);
    layer.type = registered;
    layer.ctx = calloc(1, registered->ctx_size);
    layer.endpoint = &ep;
    layer.host = &host;
    ck_assert_ptr_nonnull(layer.ctx);
    return registered->create(&layer, args);
}

static void destroy(void)
{
    size_t i;
    const unsigned char *ctx = layer.ctx;
    registered->destroy(&layer);
    /* everything the layer held (the password included) is gone */
    for (i = 0; i < registered->ctx_size; i++)
        ck_assert_msg(ctx[i] == 0, "byte %zu of the ctx survived destroy", i);
    free(layer.ctx);
}

START_TEST(hop_to_the_named_proxy)
{
    static const struct { const char *args, *host, *user, *pass; unsigned port; } ok[] = {
        { "127.0.0.1:1080", "127.0.0.1", "", "", 1080 },
        { "proxy.example.test:3128", "proxy.example.test", "", "", 3128 },
        { "u:p@[::1]:1", "::1", "u", "p", 1 },
        { "user:p:w@x@LOCALHOST.:65535", "LOCALHOST.", "user", "p:w@x", 65535 },
        { "under_score-1.test:9", "under_score-1.test", "", "", 9 },
    };
    px_proxy *p;
    ck_assert_int_eq(create(ok[_i].args), 0);
    p = layer.ctx;
    ck_assert_str_eq(hop_host, ok[_i].host);
    ck_assert_uint_eq(hop_port, ok[_i].port);
    ck_assert_int_eq(hops_open, 1);
    ck_assert_str_eq(p->user, ok[_i].user);
    ck_assert_str_eq(p->pass, ok[_i].pass);
    destroy();
    ck_assert_int_eq(hops_open, 0);
}
END_TEST

START_TEST(bad_proxy_no_hop)
{
    static const char *bad[] = { "proxy!example:1080", "[nothost]:1080", ":1080", "a b:1080",
                                 "host:0", "host:65536", "::1:1080", "u:p@", "u@host:1" };
    ck_assert_int_eq(create(bad[_i]), ST_ERROR_INVALID_PARAMETER);
    ck_assert_int_eq(hops_open, 0);
    destroy();
}
END_TEST

/* A library of SDK 1.0 has no hops: the plugin says so with ST_ERROR_PLUGIN_VERSION and
 * never reaches past the end of that library's host API, not even in destroy. */
START_TEST(library_without_hops)
{
    host.struct_size = offsetof(imapwire_host_api, hop_open);
    host.hop_open = stale_hop_open;
    host.hop_free = stale_hop_free;
    ck_assert_int_eq(create("u:secret@127.0.0.1:1080"), ST_ERROR_PLUGIN_VERSION);
    destroy();
    ck_assert_int_eq(hop_calls_beyond_size, 0);
}
END_TEST

/* Another ABI major: the init IMAPWIRE_PLUGIN_DEFINE wrote registers nothing. */
START_TEST(other_major_refused)
{
    registered = NULL;
    host.abi_version = (IMAPWIRE_TRANSPORT_ABI_MAJOR + 1u) << 16;
    ck_assert_int_eq(imapwire_plugin_init(&host), ST_ERROR_PLUGIN_VERSION);
    ck_assert_ptr_null(registered);
    ck_assert_uint_eq(imapwire_plugin_abi, IMAPWIRE_TRANSPORT_ABI);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_host");
    TCase *tc = tcase_create("socks5 on a fake host");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, hop_to_the_named_proxy, 0, 5);
    tcase_add_loop_test(tc, bad_proxy_no_hop, 0, 9);
    tcase_add_test(tc, library_without_hops);
    tcase_add_test(tc, other_major_refused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
