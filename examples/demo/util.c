/*
 * The demo's random numbers, error messages and UIDs.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"
#include "demo_private.h"

static _Thread_local char last_error[768] = "no error";

const char *demo_error_message(void)
{
	return last_error;
}

int demo__fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

int demo__lib(int rc, const char *what)
{
	const fdn_error *e = fdn_error_last();

	return demo__fail(rc, "%s: %s", what,
		e->code == rc ? e->message : fdn_strerror((fdn_error_code)rc));
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15u);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

void demo_rng_seed(demo_rng *r, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint64_t x = a;
	int i;

	/* Each input goes through the mixer, so that (1, 2) and (2, 1)
	 * give unrelated streams. */
	x = splitmix64(&x) ^ b;
	x = splitmix64(&x) ^ c;
	x = splitmix64(&x) ^ d;
	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t demo_rng_next(demo_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double demo_rng_uniform(demo_rng *r)
{
	return (double)(demo_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double demo_rng_range(demo_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * demo_rng_uniform(r);
}

uint32_t demo_rng_below(demo_rng *r, uint32_t n)
{
	/* The bias of a 64-bit modulo is below 2^-32: irrelevant here. */
	return (uint32_t)(demo_rng_next(r) % n);
}

double demo_rng_normal(demo_rng *r)
{
	double u1 = 1.0 - demo_rng_uniform(r), u2 = demo_rng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void demo_uid(char *out, size_t size, demo_rng *r)
{
	uint64_t hi = demo_rng_next(r), lo = demo_rng_next(r);
	uint32_t limb[4];
	char digits[48];
	size_t n = 0;
	int nonzero;

	hi = (hi & ~(uint64_t)0xF000u) | 0x4000u;            /* version 4 */
	lo = (lo & ~((uint64_t)3 << 62)) | ((uint64_t)2 << 62); /* variant 10 */
	limb[0] = (uint32_t)(hi >> 32);
	limb[1] = (uint32_t)hi;
	limb[2] = (uint32_t)(lo >> 32);
	limb[3] = (uint32_t)lo;
	/* Long division by 10 on 32-bit limbs, most significant first. */
	do {
		uint64_t rem = 0;
		int i;

		nonzero = 0;
		for (i = 0; i < 4; i++) {
			uint64_t cur = (rem << 32) | limb[i];

			limb[i] = (uint32_t)(cur / 10);
			rem = cur % 10;
			nonzero |= limb[i] != 0;
		}
		digits[n++] = (char)('0' + rem);
	} while (nonzero);
	if (size == 0)
		return;
	snprintf(out, size, "2.25.");
	{
		size_t at = strlen(out);

		while (n > 0 && at + 1 < size)
			out[at++] = digits[--n];
		out[at] = '\0';
	}
}
