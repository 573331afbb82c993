/* The configuration parser over arbitrary file contents. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "server/conf/config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs;
	struct config *cfg;

	cfg = config_parse("fuzz", (const char *)data, size, &errs);
	if (cfg != NULL) {
		config_lookup(cfg, NULL, "echo");
		config_unref(cfg);
	}
	return 0;
}
