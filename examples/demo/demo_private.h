/*
 * What the demo's files share: a seeded random generator, the error
 * message, and 2.25 UIDs.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#ifndef FEDNODE_DEMO_PRIVATE_H
#define FEDNODE_DEMO_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "demo.h"

#if defined(__GNUC__)
# define DEMO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
# define DEMO_PRINTF(a, b)
/* HU through the demo's window, scaled to [0, 1]. */
static inline double demo__window(double hu)
{
	double w = (hu - DEMO_WINDOW_LOW) / (DEMO_WINDOW_HIGH - DEMO_WINDOW_LOW);

	return w < 0 ? 0 : w > 1 ? 1 : w;
}

/* The features of the average synthetic patient (DEMO_FEATURES values):
 * what the trainer subtracts to centre its inputs. */
void demo__atlas(float *x);

#endif

/* xoshiro256** seeded through splitmix64: fast, good enough for
 * pictures and shuffles, and the same on every platform. */
typedef struct demo_rng {
	uint64_t s[4];
} demo_rng;

/* Seeds @p r from up to four numbers (a stream per purpose). */
void demo_rng_seed(demo_rng *r, uint64_t a, uint64_t b, uint64_t c, uint64_t d);
uint64_t demo_rng_next(demo_rng *r);
/* Uniform in [0, 1). */
double demo_rng_uniform(demo_rng *r);
/* Uniform in [lo, hi). */
double demo_rng_range(demo_rng *r, double lo, double hi);
/* Uniform integer in [0, n); n > 0. */
uint32_t demo_rng_below(demo_rng *r, uint32_t n);
/* Standard normal (Box-Muller). */
double demo_rng_normal(demo_rng *r);

/* Sets the thread's demo error and returns @p code. */
int demo__fail(int code, const char *fmt, ...) DEMO_PRINTF(2, 3);
/* For a failed library call: "<what>: <library message>", returns @p rc. */
int demo__lib(int rc, const char *what);

/* "2.25." and the decimal value of 128 random bits (a version-4 UUID,
 * ISO/IEC 9834-8), from @p r; @p out holds at least 64 bytes. */
void demo_uid(char *out, size_t size, demo_rng *r);

/* HU through the demo's window, scaled to [0, 1]. */
static inline double demo__window(double hu)
{
	double w = (hu - DEMO_WINDOW_LOW) / (DEMO_WINDOW_HIGH - DEMO_WINDOW_LOW);

	return w < 0 ? 0 : w > 1 ? 1 : w;
}

/* The features of the average synthetic patient (DEMO_FEATURES values):
 * what the trainer subtracts to centre its inputs. */
void demo__atlas(float *x);

#endif
