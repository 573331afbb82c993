/* DETACHABLE and ATTACH in the text dialect (resume.h, docs/PROTOCOL.md 12.5). */
#include "proto/resume.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/b64.h"
#include "proto/line.h"

#define ATTACHED_WORD "ATTACHED "

void
resume_ticket_encode(const uint8_t ticket[MUX_TICKET_LEN], char out[RESUME_TICKET_TEXT_LEN + 1])
{
	sodium_bin2base64(out, RESUME_TICKET_TEXT_LEN + 1, ticket, MUX_TICKET_LEN,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int
resume_ticket_decode(const char *text, uint8_t ticket[MUX_TICKET_LEN])
{
	size_t len = strnlen(text, RESUME_TICKET_TEXT_LEN + 1), out_len;

	if (len != RESUME_TICKET_TEXT_LEN ||
	    b64_decode(text, len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING, ticket,
	               MUX_TICKET_LEN, &out_len) != 0 ||
	    out_len != MUX_TICKET_LEN)
		return -1;
	return 0;
}

int
resume_count_parse(const char *text, uint64_t *count)
{
	uint64_t n = 0;
	size_t i;

	if (text[0] == '\0' || (text[0] == '0' && text[1] != '\0'))
		return -1;
	for (i = 0; text[i] != '\0'; i++) {
		if (text[i] < '0' || text[i] > '9' ||
		    n > (UINT64_MAX - (uint64_t)(text[i] - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(text[i] - '0');
	}
	*count = n;
	return 0;
}

enum resume_attach_status
resume_attach_parse(const char *ticket_text, const char *count_text, uint8_t ticket[MUX_TICKET_LEN],
                    uint64_t *received)
{
	enum resume_attach_status st = RESUME_ATTACH_OK;

	if (resume_ticket_decode(ticket_text, ticket) != 0)
		st = RESUME_ATTACH_BAD_TICKET;
	else if (resume_count_parse(count_text, received) != 0)
		st = RESUME_ATTACH_BAD_COUNT;
	if (st != RESUME_ATTACH_OK)
		sodium_memzero(ticket, MUX_TICKET_LEN);
	return st;
}

size_t
resume_attach_line(char *out, size_t size, const uint8_t ticket[MUX_TICKET_LEN], uint64_t received)
{
	char text[RESUME_TICKET_TEXT_LEN + 1];
	int n;

	resume_ticket_encode(ticket, text);
	n = snprintf(out, size, "ATTACH %s %llu\r\n", text, (unsigned long long)received);
	sodium_memzero(text, sizeof(text));
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

int
resume_attached_parse(const char *text, uint64_t *received, uint32_t *timeout_s,
                      uint8_t ticket[MUX_TICKET_LEN])
{
	char count[RESUME_COUNT_TEXT_MAX + 1], timeout[RESUME_COUNT_TEXT_MAX + 1];
	char ticket_text[RESUME_TICKET_TEXT_LEN + 1];
	const char *p = text;
	uint64_t t;
	int r = -1;

	if (strncmp(p, ATTACHED_WORD, strlen(ATTACHED_WORD)) != 0)
		return -1;
	p += strlen(ATTACHED_WORD);
	if (line_next_word(&p, count, sizeof(count)) == 0 &&
	    line_next_word(&p, timeout, sizeof(timeout)) == 0 &&
	    line_next_word(&p, ticket_text, sizeof(ticket_text)) == 0 && *p == '\0' &&
	    resume_count_parse(timeout, &t) == 0 && t <= UINT32_MAX &&
	    resume_attach_parse(ticket_text, count, ticket, received) == RESUME_ATTACH_OK) {
		*timeout_s = (uint32_t)t;
		r = 0;
	}
	sodium_memzero(ticket_text, sizeof(ticket_text));
	return r;
}

size_t
resume_attached_reply(char *out, size_t size, uint64_t received, uint32_t timeout_s,
                      const uint8_t ticket[MUX_TICKET_LEN])
{
	char text[RESUME_TICKET_TEXT_LEN + 1];
	int n;

	resume_ticket_encode(ticket, text);
	n = snprintf(out, size, "+ " ATTACHED_WORD "%llu %u %s\r\n", (unsigned long long)received,
	             (unsigned)timeout_s, text);
	sodium_memzero(text, sizeof(text));
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}
