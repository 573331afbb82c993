/*
 * The metrics endpoint's HTTP (src/proto/http.h): requests whole, cut
 * short, malformed, too large; response heads.  And the counters it
 * reports (src/server/policy/metrics.h): refusals by reason up to their
 * bound, the connect histogram's buckets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/http.h"
#include "server/policy/metrics.h"

static enum http_request
parse(const char *req, char path[HTTP_PATH_MAX + 1])
{
	return http_request_parse(req, strlen(req), path);
}

static void
test_get(void **state)
{
	char path[HTTP_PATH_MAX + 1];

	assert_int_equal(parse("GET /metrics HTTP/1.0\r\n\r\n", path), HTTP_GET);
	assert_string_equal(path, "/metrics");
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", path),
	                 HTTP_GET);
	assert_int_equal(parse("GET /a?b=c HTTP/1.0\n\n", path), HTTP_GET);
	assert_string_equal(path, "/a?b=c");
	/* What follows the headers is not looked at. */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n\x01\x02", path), HTTP_GET);
}

static void
test_incomplete(void **state)
{
	char path[HTTP_PATH_MAX + 1];

	assert_int_equal(parse("", path), HTTP_INCOMPLETE);
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\n", path), HTTP_INCOMPLETE);
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\nHost: x\r\n\r", path), HTTP_INCOMPLETE);
	assert_string_equal(path, "");
}

static void
test_refused(void **state)
{
	char path[HTTP_PATH_MAX + 1], *big = malloc(HTTP_REQUEST_MAX + 1);

	assert_int_equal(parse("POST /metrics HTTP/1.0\r\n\r\n", path), HTTP_NOT_GET);
	assert_int_equal(parse("HEAD /metrics HTTP/1.0\r\n\r\n", path), HTTP_NOT_GET);
	assert_string_equal(path, "");
	assert_int_equal(parse("get /metrics HTTP/1.0\r\n\r\n", path), HTTP_NOT_GET);
	assert_int_equal(parse("G(T /metrics HTTP/1.0\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET metrics HTTP/1.0\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET /metrics\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET  /metrics HTTP/1.0\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET /metrics HTTP/1.0 x\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\nX: \x01\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("\r\n\r\n", path), HTTP_BAD);
	/* Header lines: a name and a colon each, no folding, no stray CR. */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost x\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET / HTTP/1.1\r\n: x\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", path), HTTP_BAD);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA:\r\nB:c\n\r\n", path), HTTP_GET);
	assert_int_equal(http_request_parse("GET /\0 HTTP/1.0\n\n", 17, path), HTTP_BAD);
	memset(big, 'a', HTTP_REQUEST_MAX);
	big[HTTP_REQUEST_MAX] = '\0';
	assert_int_equal(parse(big, path), HTTP_TOO_LARGE);
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', HTTP_PATH_MAX);
	memcpy(big + 5 + HTTP_PATH_MAX, " HTTP/1.0\n\n", 12);
	assert_int_equal(parse(big, path), HTTP_BAD); /* a path one byte too long */
	free(big);
}

static void
test_response_head(void **state)
{
	char out[256];
	size_t len;

	assert_int_equal(http_response_head(200, "text/plain", 12, out, sizeof(out), &len), 0);
	assert_string_equal(out,
	                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
	                    "Connection: close\r\n\r\n");
	assert_int_equal(len, strlen(out));
	assert_int_equal(http_response_head(431, "text/plain", 0, out, sizeof(out), &len), 0);
	assert_int_equal(http_response_head(500, "text/plain", 0, out, sizeof(out), &len), -1);
	assert_int_equal(http_response_head(200, "text/plain", 0, out, 20, &len), -1);
}

static void
test_refusal_reasons(void **state)
{
	struct metrics *m = calloc(1, sizeof(*m));
	char reason[32];
	unsigned i;

	metrics_refused(m, "unknown service");
	metrics_refused(m, "unknown service");
	assert_int_equal(m->nrefusals, 1);
	assert_int_equal(m->refusals[0].count, 2);
	for (i = 1; i < METRICS_REASONS_MAX + 3; i++) {
		snprintf(reason, sizeof(reason), "reason %u", i);
		metrics_refused(m, reason);
	}
	assert_int_equal(m->nrefusals, METRICS_REASONS_MAX);
	assert_int_equal(m->refusals_other, 3);
	free(m);
}

static void
test_connect_histogram(void **state)
{
	struct metrics *m = calloc(1, sizeof(*m));

	metrics_connect(m, true, 100);      /* under the first bound */
	metrics_connect(m, true, 500);      /* on it: le is inclusive */
	metrics_connect(m, true, 20000000); /* above the last */
	metrics_connect(m, false, 0);
	assert_int_equal(m->connect_buckets[0], 2);
	assert_int_equal(m->connect_buckets[METRICS_CONNECT_BUCKETS], 1);
	assert_int_equal(m->connect_count, 3);
	assert_int_equal(m->connect_sum_us, 20000600);
	assert_int_equal(m->connect_failures, 1);
	metrics_closed(m, "sealed", "usp", 5, 7);
	metrics_closed(m, "nonsense", "nonsense", 0, 0); /* counted as plain, none */
	assert_int_equal(m->closed[metrics_transport("sealed")][metrics_dialect("usp")], 1);
	assert_int_equal(m->closed[0][0], 1);
	assert_int_equal(m->closed_bytes_out, 7);
	free(m);
}

/* Another worker's counters added: reasons by their text, whatever order each met them in. */
static void
test_workers_counters_added(void **state)
{
	struct metrics *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	(void)state;
	metrics_refused(a, "unknown service");
	metrics_refused(b, "too many connections");
	metrics_refused(b, "unknown service");
	metrics_refused(b, "unknown service");
	metrics_connect(a, true, 100);
	metrics_connect(b, true, 600);
	metrics_closed(b, "sealed", "text", 1, 2);
	a->accepted = 3;
	b->accepted = 4;
	metrics_add(a, b);
	assert_int_equal(a->nrefusals, 2);
	assert_string_equal(a->refusals[0].reason, "unknown service");
	assert_int_equal(a->refusals[0].count, 3);
	assert_int_equal(a->refusals[1].count, 1);
	assert_int_equal(a->accepted, 7);
	assert_int_equal(a->connect_count, 2);
	assert_int_equal(a->connect_buckets[0], 1);
	assert_int_equal(a->connect_buckets[1], 1);
	assert_int_equal(a->closed[metrics_transport("sealed")][metrics_dialect("text")], 1);
	assert_int_equal(a->closed_bytes_out, 2);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_get),
	        cmocka_unit_test(test_incomplete),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_response_head),
	        cmocka_unit_test(test_refusal_reasons),
	        cmocka_unit_test(test_connect_histogram),
	        cmocka_unit_test(test_workers_counters_added),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
