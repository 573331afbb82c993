/*
 * Filling a struct five_error, and naming its steps.
 */
#include "client/base/error.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/util.h"

int
five_fail(struct five_error *err, enum five_step step, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->step = step;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	five_printable(err->message, err->message, sizeof(err->message));
	return -1;
}

void
five_printable(const char *text, char *out, size_t size)
{
	size_t i;

	for (i = 0; text != NULL && text[i] != '\0' && i + 1 < size; i++)
		out[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	out[i] = '\0';
}

struct five_error *
five_error_or(struct five_error *err, struct five_error *scratch)
{
	if (err != NULL)
		return err;
	scratch->step = FIVE_OK;
	scratch->message[0] = '\0';
	return scratch;
}

const char *
five_step_name(enum five_step step)
{
	static const char *const names[] = {
	        [FIVE_OK] = "ok",
	        [FIVE_ERR_SYSTEM] = "system",
	        [FIVE_ERR_USAGE] = "usage",
	        [FIVE_ERR_RESOLVE] = "resolve",
	        [FIVE_ERR_CONNECT] = "connect",
	        [FIVE_ERR_REFUSED] = "refused",
	        [FIVE_ERR_PROTOCOL] = "protocol",
	        [FIVE_ERR_TRUST] = "trust",
	        [FIVE_ERR_REDIRECT] = "redirect",
	};

	return (size_t)step < ARRAY_LEN(names) ? names[step] : "unknown";
}
