/*
 * authorized_keys files as sshd-style lines: every line of the input goes
 * through the line parser, and every key it accepts through the option
 * walker and lookups.  Options accepted at parse time must never be called
 * malformed afterwards, and a refused line must leave no key behind.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "crypto/sshkey.h"
#include "fuzz.h"

/* 16 KiB each: kept off the stack. */
static struct sshkey_authorized_key key;
static char value[SSHKEY_LINE_MAX];

FUZZ_INITIALIZE_SODIUM()

static void
check_key(const struct sshkey_authorized_key *k)
{
	static const char *const names[] = {"from",   "principals",     "command",
	                                    "no-pty", "cert-authority", "restrict"};
	char name[SSHKEY_OPTION_NAME_MAX];
	char fp[SSHKEY_FINGERPRINT_MAX];
	size_t cursor = 0, clen = strlen(k->comment), i;
	int r;

	while ((r = sshkey_authorized_option_next(k, &cursor, name, sizeof(name), value,
	                                          sizeof(value))) == 1) {
		/* Present, so found, unless it is there twice. */
		if (sshkey_authorized_option(k, name, value, sizeof(value)) == 0)
			abort();
	}
	if (r != 0)
		abort();
	for (i = 0; i < ARRAY_LEN(names); i++)
		(void)sshkey_authorized_option(k, names[i], value, sizeof(value));
	if (clen > 0 && (k->comment[0] == ' ' || k->comment[clen - 1] == ' '))
		abort();
	sshkey_fingerprint(k->pk, fp);
	if (strncmp(fp, "SHA256:", 7) != 0 || strlen(fp) != 50)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *why;
	const char *nl;
	size_t start = 0, len;
	int r;

	while (start < size) {
		nl = memchr(text + start, '\n', size - start);
		len = nl != NULL ? (size_t)(nl - (text + start)) + 1 : size - start;
		why = NULL;
		r = sshkey_authorized_parse_line(text + start, len, &key, &why);
		if (r == 1)
			check_key(&key);
		else if (r < 0 && (why == NULL || !sodium_is_zero(key.pk, sizeof(key.pk))))
			abort();
		else if (r != 0 && r != SSHKEY_ERR && r != SSHKEY_UNSUPPORTED)
			abort();
		start += len;
	}
	return 0;
}
