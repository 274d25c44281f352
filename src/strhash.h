/* strhash.h - FNV-1a over a NUL-terminated string, for the hash tables of names. */
#ifndef VOLLEY_STRHASH_H
#define VOLLEY_STRHASH_H
#include <stdint.h>

/* strhash - FNV-1a of s. */
static inline uint32_t strhash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

#endif
