/*
 * The options of every call, with their defaults, read as far as the
 * caller's struct five_options reaches (its size member).
 */
#include "client/base/options.h"

#include <stdint.h>
#include <string.h>

#include "client/base/error.h"

/*
 * The smallest struct five_options there is: the one of the first libfive
 * to size its options, which ends with notice_arg.  Members are appended
 * after it, never inserted, so that every size from here up ends on a
 * member.
 */
#define OPTIONS_SIZE_MIN                                                                           \
	(offsetof(struct five_options, notice_arg) + sizeof(((struct five_options *)0)->notice_arg))

/* Options will never take this much: a larger size is not one five_options_init set. */
#define OPTIONS_SIZE_MAX 4096

void
five_options_init(struct five_options *opts)
{
	if (opts == NULL)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

/* Whether the n bytes at p are all zero. */
static bool
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

int
five_options_resolve(const struct five_options *opts, struct five_options *out,
                     struct five_error *err)
{
	five_options_init(out);
	if (opts != NULL && (opts->size < OPTIONS_SIZE_MIN || opts->size > OPTIONS_SIZE_MAX))
		return five_fail(
		        err, FIVE_ERR_USAGE,
		        "struct five_options of %zu bytes: set it up with five_options_init",
		        opts->size);
	/*
	 * A program built for a later libfive may set options this one does
	 * not have: going on without them could do what it did not ask for.
	 */
	if (opts != NULL && opts->size > sizeof(*out) &&
	    !all_zero((const uint8_t *)opts + sizeof(*out), opts->size - sizeof(*out)))
		return five_fail(err, FIVE_ERR_USAGE,
		                 "options this libfive does not have: struct five_options of %zu "
		                 "bytes, of which it knows %zu",
		                 opts->size, sizeof(*out));
	if (opts != NULL)
		memcpy(out, opts, opts->size < sizeof(*out) ? opts->size : sizeof(*out));
	out->size = sizeof(*out);
	if (out->timeout_ms <= 0)
		out->timeout_ms = FIVE_DEFAULT_TIMEOUT_MS;
	return 0;
}

int
five_options_plain_step(const struct five_options *o, const char *what, struct five_error *err)
{
	if (o->transport == FIVE_PLAIN)
		return 0;
	return five_fail(err, FIVE_ERR_USAGE,
	                 "%s is a step of plain TCPMUX: set transport to FIVE_PLAIN, or use "
	                 "five_connect for a sealed or TLS session",
	                 what);
}

void
five_notice(const struct five_options *o, const char *text)
{
	if (o->notice != NULL && text[0] != '\0')
		o->notice(o->notice_arg, text);
}
