#include "common/b64.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>

static int
in_alphabet(char c, int variant)
{
	bool urlsafe = variant == sodium_base64_VARIANT_URLSAFE ||
	               variant == sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	bool padded = variant == sodium_base64_VARIANT_ORIGINAL ||
	              variant == sodium_base64_VARIANT_URLSAFE;

	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return 1;
	if (c == (urlsafe ? '-' : '+') || c == (urlsafe ? '_' : '/'))
		return 1;
	return padded && c == '=';
}

int
b64_decode(const char *s, size_t len, const char *ignore, int variant, uint8_t *out,
           size_t out_size, size_t *out_len)
{
	const char *end;
	size_t i;

	for (i = 0; i < len; i++)
		if (!in_alphabet(s[i], variant) &&
		    (ignore == NULL || s[i] == '\0' || strchr(ignore, s[i]) == NULL))
			return -1;
	if (sodium_base642bin(out, out_size, s, len, ignore, out_len, &end, variant) != 0)
		return -1;
	return end == s + len ? 0 : -1;
}
