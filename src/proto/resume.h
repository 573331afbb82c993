/*
 * DETACHABLE and ATTACH in the text dialect (docs/PROTOCOL.md section
 * 12.5): the ticket as text, the ATTACH line's arguments and the reply.
 * Pure code: no I/O, no state.
 */
#ifndef FIVE_RESUME_H
#define FIVE_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/mux.h"

/* A ticket in base64url without padding. */
#define RESUME_TICKET_TEXT_LEN 64

/* A count in decimal: at most 20 digits (2^64-1). */
#define RESUME_COUNT_TEXT_MAX 20

/* "ATTACH ticket received\r\n" at its longest, with the NUL. */
#define RESUME_ATTACH_LINE_MAX                                                                     \
	(sizeof("ATTACH  \r\n") + RESUME_TICKET_TEXT_LEN + RESUME_COUNT_TEXT_MAX)

/* The ticket's text: out has RESUME_TICKET_TEXT_LEN characters and a NUL. */
void resume_ticket_encode(const uint8_t ticket[MUX_TICKET_LEN],
                          char out[RESUME_TICKET_TEXT_LEN + 1]);

/* A ticket's text, strictly (64 characters of the alphabet): 0 or -1. */
int resume_ticket_decode(const char *text, uint8_t ticket[MUX_TICKET_LEN]);

/* A count: decimal digits, no sign, no leading zero, no overflow.  0 or -1. */
int resume_count_parse(const char *text, uint64_t *count);

enum resume_attach_status {
	RESUME_ATTACH_OK = 0,
	RESUME_ATTACH_BAD_TICKET = -1, /* not a ticket's text */
	RESUME_ATTACH_BAD_COUNT = -2,  /* the ticket's text is, the count not */
};

/* ATTACH's two arguments (cmd_parse's args); ticket is zeroed unless RESUME_ATTACH_OK. */
enum resume_attach_status resume_attach_parse(const char *ticket_text, const char *count_text,
                                              uint8_t ticket[MUX_TICKET_LEN], uint64_t *received);

/* The ATTACH line, CRLF included: its length (< size), or 0 when it does not fit. */
size_t resume_attach_line(char *out, size_t size, const uint8_t ticket[MUX_TICKET_LEN],
                          uint64_t received);

/*
 * The text of a "+ ATTACHED received timeout ticket" reply (reply_parse's
 * text: "ATTACHED ..."): 0, or -1 when it is not of that form.
 */
int resume_attached_parse(const char *text, uint64_t *received, uint32_t *timeout_s,
                          uint8_t ticket[MUX_TICKET_LEN]);

/* That reply, CRLF included: its length (< size), or 0 when it does not fit. */
size_t resume_attached_reply(char *out, size_t size, uint64_t received, uint32_t timeout_s,
                             const uint8_t ticket[MUX_TICKET_LEN]);

#endif
