/*
 * What the unit test files share: cmocka, with the headers it needs before
 * it, and the end of main in a file whose tests use libsodium.
 */
#ifndef FIVE_TESTS_UNIT_H
#define FIVE_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

/* Runs the table of tests and its group fixtures once libsodium is ready; 1 if it cannot be. */
#define UNIT_RUN_WITH_SODIUM(tests, setup, teardown)                                               \
	(sodium_init() < 0 ? 1 : cmocka_run_group_tests(tests, setup, teardown))

#endif
