/*
 * Strict base64 decoding.  libsodium 1.0.18's decoder takes bytes 0x80-0xff
 * for alphabet characters; these functions check the alphabet first, so
 * only canonical text decodes.
 */
#ifndef FIVE_B64_H
#define FIVE_B64_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes len characters of s in libsodium's variant (sodium_base64_VARIANT_*),
 * skipping characters in ignore (may be NULL).  The whole input must be
 * used.  Returns 0 with *out_len set, or -1.
 */
int b64_decode(const char *s, size_t len, const char *ignore, int variant, uint8_t *out,
               size_t out_size, size_t *out_len);

#endif
