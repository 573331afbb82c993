/* A splice(2) pipe between two socket pairs: bytes, the end, nothing to read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/stream/splice.h"

/* A source pair (write to src[0], splice from src[1]) and a destination pair (splice to dst[0]). */
struct rig {
	int src[2], dst[2];
	struct splice_pipe p;
};

static int
setup(void **state)
{
	static struct rig r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, r.src) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, r.dst) != 0 ||
	    splice_pipe_open(&r.p) != 0)
		return -1;
	*state = &r;
	return 0;
}

static int
teardown(void **state)
{
	struct rig *r = *state;

	splice_pipe_close(&r->p);
	close(r->src[0]);
	close(r->src[1]);
	close(r->dst[0]);
	close(r->dst[1]);
	return 0;
}

static void
test_bytes_pass_through(void **state)
{
	struct rig *r = *state;
	char got[16] = {0};

	assert_true(r->p.size >= SPLICE_PIPE_SIZE);
	assert_int_equal(r->p.held, 0);
	assert_int_equal(write(r->src[0], "hello", 5), 5);
	assert_int_equal(splice_pipe_in(&r->p, r->src[1]), 5);
	assert_int_equal(r->p.held, 5);
	assert_int_equal(splice_pipe_out(&r->p, r->dst[0]), 5);
	assert_int_equal(r->p.held, 0);
	assert_int_equal(read(r->dst[1], got, sizeof(got)), 5);
	assert_memory_equal(got, "hello", 5);
}

static void
test_nothing_to_read_then_the_end(void **state)
{
	struct rig *r = *state;

	assert_int_equal(splice_pipe_in(&r->p, r->src[1]), -EAGAIN);
	assert_int_equal(shutdown(r->src[0], SHUT_WR), 0);
	assert_int_equal(splice_pipe_in(&r->p, r->src[1]), 0);
	assert_int_equal(r->p.held, 0);
}

static void
test_close_is_safe_twice(void **state)
{
	struct splice_pipe p;

	splice_pipe_init(&p);
	splice_pipe_close(&p);
	assert_int_equal(splice_pipe_open(&p), 0);
	splice_pipe_close(&p);
	splice_pipe_close(&p);
	assert_int_equal(p.rd, -1);
	assert_int_equal(p.wr, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_bytes_pass_through, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_nothing_to_read_then_the_end, setup, teardown),
	        cmocka_unit_test(test_close_is_safe_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
