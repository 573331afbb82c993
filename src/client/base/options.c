#include "client/base/options.h"

#include <string.h>

void
five_options_resolve(const struct five_options *opts, struct five_options *out)
{
	if (opts != NULL)
		*out = *opts;
	else
		memset(out, 0, sizeof(*out));
	if (out->timeout_ms <= 0)
		out->timeout_ms = FIVE_DEFAULT_TIMEOUT_MS;
}
