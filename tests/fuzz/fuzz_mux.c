/* MULTIPLEX frames as either side decodes them, and re-encoded where an encoder exists. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "proto/mux.h"

static void
reencode(const struct mux_frame *f)
{
	uint8_t out[MUX_FRAME_MAX];
	char token[MUX_TOKEN_MAX + 1];

	if (f->type != MUX_OPEN)
		return;
	memcpy(token, f->u.open.token, f->u.open.token_len);
	token[f->u.open.token_len] = '\0';
	if (f->id % 2 == 1 &&
	    mux_encode_open(out, sizeof(out), f->id, f->u.open.service, f->u.open.vhost, token,
	                    f->u.open.data, f->u.open.data_len) != MUX_HEADER_LEN + f->len)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mux_frame f;
	const char *why;
	size_t used;

	while (mux_decode(data, size, &f, &used, &why) == MUX_OK) {
		reencode(&f);
		data += used;
		size -= used;
	}
	return 0;
}
