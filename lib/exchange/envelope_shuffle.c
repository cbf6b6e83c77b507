/*
 * Byte shuffle before compression: the k-th bytes of all elements side by
 * side, so that the slowly varying sign/exponent bytes of float weights
 * form long, compressible runs.  Built -O3 (lib/meson.build): the loops
 * below are written with a constant width so that the compiler
 * vectorises the strided accesses.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "envelope_private.h"

#define SHUFFLE(W)                                                          \
	static void shuffle_##W(unsigned char *restrict dst,                \
		const unsigned char *restrict src, size_t nel)              \
	{                                                                   \
		for (size_t j = 0; j < (W); j++)                            \
			for (size_t i = 0; i < nel; i++)                    \
				dst[j * nel + i] = src[i * (W) + j];        \
	}                                                                   \
	static void unshuffle_##W(unsigned char *restrict dst,              \
		const unsigned char *restrict src, size_t nel)              \
	{                                                                   \
		for (size_t i = 0; i < nel; i++)                            \
			for (size_t j = 0; j < (W); j++)                    \
				dst[i * (W) + j] = src[j * nel + i];        \
	}

SHUFFLE(2)
SHUFFLE(4)
SHUFFLE(8)

void fdn_env__shuffle(unsigned char *dst, const unsigned char *src, size_t n,
	unsigned int width)
{
	size_t nel = n / width, body = nel * width;

	switch (width) {
	case 2: shuffle_2(dst, src, nel); break;
	case 4: shuffle_4(dst, src, nel); break;
	case 8: shuffle_8(dst, src, nel); break;
	default: body = 0; break;
	}
	memcpy(dst + body, src + body, n - body);
}

void fdn_env__unshuffle(unsigned char *dst, const unsigned char *src, size_t n,
	unsigned int width)
{
	size_t nel = n / width, body = nel * width;

	switch (width) {
	case 2: unshuffle_2(dst, src, nel); break;
	case 4: unshuffle_4(dst, src, nel); break;
	case 8: unshuffle_8(dst, src, nel); break;
	default: body = 0; break;
	}
	memcpy(dst + body, src + body, n - body);
}
