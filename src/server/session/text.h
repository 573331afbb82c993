/* The text dialect (text.c). */
#ifndef FIVE_TEXT_H
#define FIVE_TEXT_H

struct session;

/*
 * Handles the complete request lines the session holds while it reads
 * lines (S_COMMAND, S_AUTH); leaves an incomplete one for later.
 */
void text_take(struct session *s);

#endif
