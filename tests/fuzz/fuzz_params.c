/*
 * On-demand execution's parameters (proto/usp.h): an object checked
 * against a service's list (the monitor's check of what a worker passes),
 * the same text as a list entry, and as a redirect's words (proto/line.h).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/line.h"
#include "proto/usp.h"

#define TEXT_MAX 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const spec_words[] = {"count:integer", "name:string", "ratio:number",
	                                         "verbose:boolean", "opts:json"};
	char name[PARAMS_NAME_MAX + 1], shaped[PARAMS_BYTES_MAX + 1], *text;
	struct params_spec spec = {0}, other = {0};
	struct redirect r;
	const char *why;
	json_t *v;
	size_t i;

	for (i = 0; i < sizeof(spec_words) / sizeof(spec_words[0]); i++)
		params_spec_add(&spec, spec_words[i], &why);
	params_check((const char *)data, size, &spec, name);
	if ((v = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL)) != NULL) {
		params_shape(v, shaped);
		json_decref(v);
	}
	if (size > TEXT_MAX || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	params_spec_add(&other, text, &why);
	redirect_parse(text, &r, &why);
	free(text);
	return 0;
}
