/*
 * The USP dialect as fived reads it: lines taken one after another and
 * decoded.  Whatever the decoder says must be sayable: a refusal's reason
 * goes out in an error message, and an accepted message's names and
 * session id go out in the replies, so the encoders must take them.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/usp.h"

#define SERVER_ID      "0123456789abcdef0123456789abcdef"
#define MALFORMED      "malformed message: "
#define ERROR_TEXT_MAX (sizeof(MALFORMED) + USP_REASON_MAX)

FUZZ_INITIALIZE_SODIUM()

static void
must_encode(int r, char *out)
{
	if (r != 0)
		abort();
	free(out);
}

static void
say_refusal(const struct usp_ids *ids, const char *reason)
{
	char text[ERROR_TEXT_MAX];
	char *out;
	size_t len;

	if (reason[0] == '\0')
		abort();
	snprintf(text, sizeof(text), MALFORMED "%s", reason);
	must_encode(usp_encode_error(ids, text, NULL, NULL, 0, &out, &len), out);
}

/* The email's requested_services: every index the decoder took can be answered. */
static void
answer_services(const struct usp_ids *ids, const struct usp_msg *m)
{
	struct usp_service_result res[USP_STREAMS_MAX];
	struct usp_service_answer a = {
	        .authz = m->authz_kind == USP_AUTHZ_GIVEN ? m->authz : NULL,
	        .invalidated = m->invalidate,
	        .count = m->ntokens,
	        .results = res,
	        .nresults = m->nservices,
	};
	struct usp_app_menu menu = {.authenticated = true};
	char *out;
	size_t len, i;

	if (a.authz != NULL)
		a.menu = &menu;
	for (i = 0; i < m->nservices; i++) {
		res[i].index = m->services[i];
		res[i].token = NULL;
		res[i].error = "unknown application";
	}
	must_encode(usp_encode_service_answer(ids, &a, &out, &len), out);
}

static void
answer(struct usp_ids *ids, const struct usp_msg *m)
{
	char *out;
	size_t len, i;

	if (m->client_session_id[0] != '\0')
		memcpy(ids->client, m->client_session_id, sizeof(ids->client));
	for (i = 0; i < m->nstreams; i++)
		must_encode(usp_encode_connect(ids, m->streams[i].application, &out, &len), out);
	if (m->type == USP_SERVICE_REQUEST)
		answer_services(ids, m);
}

static void
decode(struct usp_ids *ids, const uint8_t *line, size_t len)
{
	char reason[USP_REASON_MAX];
	struct usp_msg m;

	if (usp_decode((const char *)line, len, &m, reason) == 0)
		answer(ids, &m);
	else
		say_refusal(ids, reason);
	usp_msg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usp_ids ids = {SERVER_ID, ""};
	size_t len, used;

	while (usp_line_take(data, size, &len, &used) == USP_LINE_OK) {
		if (len >= used)
			abort();
		decode(&ids, data, len);
		data += used;
		size -= used;
	}
	/* What is left has no LF: the decoder must cope with any bytes, LF-free or not. */
	decode(&ids, data, size);
	return 0;
}
