/* Tests for retry timing (src/queue/queue_retry.c) and the small pure
   routing helpers: MX ordering (RFC 5321 5.1), null MX (RFC 7505),
   recipient domains, host:port parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lib/xalloc.h"
#include "queue/queue_int.h"

static void
test_queue_retry_delay(void)
{
	const uint64_t m = 60000; /* one minute */

	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 1) == 5 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 2) == 10 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 3) == 20 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 4) == 40 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 6) == 160 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 7) == 240 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 1000000) == 240 * m);
	test_assert(queue_retry_delay_ms(5 * m, 240 * m, 0) == 5 * m);
	/* No overflow near the top of the range. */
	test_assert(queue_retry_delay_ms(UINT64_MAX / 3, UINT64_MAX, 5) ==
		    UINT64_MAX);
	test_assert(queue_retry_delay_ms(10, 5, 1) == 5);
}

static void
test_queue_retry_schedule(void)
{
	int64_t next = 0;
	const uint64_t day = 86400000;

	/* 5 min doubling, 5 days: first retry 300 s after now. */
	test_assert(queue_retry_schedule(1000, 1000, 1, 300000, 14400000,
					 5 * day, &next));
	test_assert(next == 1300);
	test_assert(queue_retry_schedule(1000, 2000, 3, 300000, 14400000,
					 5 * day, &next));
	test_assert(next == 2000 + 1200);
	/* The last try happens at the maximum age, not after it. */
	test_assert(queue_retry_schedule(0, 5 * 86400 - 10, 30, 300000,
					 14400000, 5 * day, &next));
	test_assert(next == 5 * 86400);
	/* At or past the maximum age: give up. */
	test_assert(!queue_retry_schedule(0, 5 * 86400, 31, 300000, 14400000,
					  5 * day, &next));
	/* Sub-second delays round up to one second. */
	test_assert(queue_retry_schedule(0, 10, 1, 100, 100, 60000, &next));
	test_assert(next == 11);
}

static uint32_t
fixed_rand(void *ctx, uint32_t n)
{
	uint32_t *seq = ctx;

	return (*seq)++ % n;
}

static uint32_t
zero_rand(void *ctx, uint32_t n)
{
	(void)ctx;
	(void)n;
	return 0;
}

static struct queue_mx *
mx_list(const unsigned *prefs, const char *const *hosts, size_t n)
{
	struct queue_mx *mx = xcalloc(n, sizeof(*mx));

	for (size_t i = 0; i < n; i++) {
		mx[i].pref = prefs[i];
		mx[i].host = xstrdup(hosts[i]);
	}
	return mx;
}

static void
test_queue_mx_sort(void)
{
	static const unsigned prefs[] = { 20, 10, 30, 10, 20 };
	static const char *const hosts[] = { "c", "a", "e", "b", "d" };
	struct queue_mx *mx = mx_list(prefs, hosts, 5);
	bool seen_ab = false, seen_ba = false;
	uint32_t seq = 0;

	queue_dns_mx_sort(mx, 5, zero_rand, NULL);
	for (size_t i = 0; i + 1 < 5; i++)
		test_assert_idx(mx[i].pref <= mx[i + 1].pref, i);
	test_assert(mx[4].pref == 30 && strcmp(mx[4].host, "e") == 0);
	/* Equal preferences come in every order over many shuffles. */
	for (int round = 0; round < 20; round++) {
		queue_dns_mx_sort(mx, 5, fixed_rand, &seq);
		test_assert(mx[0].pref == 10 && mx[1].pref == 10);
		test_assert(mx[2].pref == 20 && mx[3].pref == 20);
		if (strcmp(mx[0].host, "a") == 0)
			seen_ab = true;
		else
			seen_ba = true;
	}
	test_assert(seen_ab && seen_ba);
	test_assert(!queue_dns_mx_is_null(mx, 5));
	queue_mx_free(mx, 5);
	queue_dns_mx_sort(NULL, 0, zero_rand, NULL);
}

static void
test_queue_mx_null(void)
{
	static const unsigned prefs[] = { 0 };
	static const char *const hosts[] = { "" };
	struct queue_mx *mx = mx_list(prefs, hosts, 1);

	test_assert(queue_dns_mx_is_null(mx, 1));
	queue_mx_free(mx, 1);
}

static void
test_queue_route_domain(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "user@Example.COM", "example.com" },
		{ "a@b@c.org", "c.org" },
		{ "user@example.com.", "example.com" },
		{ "user@[127.0.0.1]", "[127.0.0.1]" },
		{ "user@", NULL },
		{ "nodomain", NULL },
	};
	char out[QUEUE_DOMAIN_MAX_BYTES + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = queue_route_domain(cases[i].in, out, sizeof(out));
		test_assert_idx((r == 0) == (cases[i].out != NULL), i);
		if (r == 0)
			test_assert_idx(strcmp(out, cases[i].out) == 0, i);
	}
}

static void
test_queue_hostport(void)
{
	char host[64];
	uint16_t port = 0;

	test_assert(queue_main_hostport("smtp.example.org:587", host,
					sizeof(host), &port) == 0);
	test_assert_strcmp(host, "smtp.example.org");
	test_assert(port == 587);
	test_assert(queue_main_hostport("[::1]:2525", host, sizeof(host),
					&port) == 0);
	test_assert_strcmp(host, "::1");
	test_assert(port == 2525);
	test_assert(queue_main_hostport("host", host, sizeof(host), &port) < 0);
	test_assert(queue_main_hostport("host:0", host, sizeof(host), &port) <
		    0);
	test_assert(queue_main_hostport("host:65536", host, sizeof(host),
					&port) < 0);
	test_assert(queue_main_hostport(":25", host, sizeof(host), &port) < 0);
	test_assert(queue_main_hostport("[::1]25", host, sizeof(host), &port) <
		    0);
	test_assert(queue_main_hostport("host:+25", host, sizeof(host),
					&port) < 0);
}

static const struct test_case tests[] = {
	{ "queue_retry_delay", test_queue_retry_delay },
	{ "queue_retry_schedule", test_queue_retry_schedule },
	{ "queue_mx_sort", test_queue_mx_sort },
	{ "queue_mx_null", test_queue_mx_null },
	{ "queue_route_domain", test_queue_route_domain },
	{ "queue_hostport", test_queue_hostport },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
