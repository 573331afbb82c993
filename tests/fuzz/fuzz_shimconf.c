/* libfive-shim.so's configuration (src/shim/conf.c): parsed, checked, and matched. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "shim/conf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shim_conf c;
	char why[512], name[SHIM_NAME_MAX + 1];
	size_t i;

	shim_conf_init(&c);
	if (shim_conf_parse(&c, 0, (const char *)data, size, why, sizeof(why)) != 0)
		return 0;
	shim_conf_check(&c, why, sizeof(why));
	/* Each rule's own name, and its host, looked up as a program's name would be. */
	for (i = 0; i < c.n; i++) {
		if (shim_conf_normalize(c.rules[i].name, name) == 0) {
			shim_conf_handles(&c, name);
			shim_conf_match(&c, name, c.rules[i].port);
		}
		if (shim_conf_normalize(c.rules[i].host, name) == 0)
			shim_conf_match(&c, name, 80);
	}
	return 0;
}
