/*
 * Proofs of identity, client side (docs/PROTOCOL.md section 13): the
 * reading of fived's answers to GETSIGNKEY and PROVEAUTH.
 */
#ifndef FIVE_CLIENT_DIALECT_PROOF_H
#define FIVE_CLIENT_DIALECT_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "five.h"
#include "proto/token.h"

struct five_conn;

/*
 * Reads fived's answers on c, a connection "GETSIGNKEY", "PROVEAUTH H"
 * went out on: replies lines of '+' (authentication's), then
 * "+ SIGNKEY KEY PROVIDER", the key into pk, then "+ PROOF T", T copied
 * into proof[0..size) unverified.  Returns 0, or -1 with err filled
 * (FIVE_ERR_REFUSED with fived's reason, FIVE_ERR_PROTOCOL for an answer
 * that is not one).
 */
int five_proof_read(struct five_conn *c, unsigned replies, uint8_t pk[TOKEN_PK_LEN], char *proof,
                    size_t size, struct five_error *err);

#endif
