/*
 * libfednode: the aggregation's hot loops, compiled -O3 (lib/meson.build)
 * because GCC 12 vectorises only there.  Each loop is written so that it
 * does vectorise: elements are loaded with memcpy (tensor data need not
 * be aligned), the dtype switch sits outside the loops, and the non-
 * finite scan ORs its verdicts before it looks for the index.
 * `gcc -O3 -fopt-info-vec-optimized` lists them.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fedavg/fedavg_private.h"
#include "fednode/model.h"

/* Safetensors is little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
# define LE16(v) __builtin_bswap16(v)
# define LE32(v) __builtin_bswap32(v)
# define LE64(v) __builtin_bswap64(v)
#else
# define LE16(v) (v)
# define LE32(v) (v)
# define LE64(v) (v)
#endif

static inline uint16_t ld16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return LE16(v);
}

static inline uint32_t ld32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return LE32(v);
}

static inline uint64_t ld64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return LE64(v);
}

static inline double dbl_of(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, 8);
	return d;
}

static inline uint64_t bits_of(double d)
{
	uint64_t b;

	memcpy(&b, &d, 8);
	return b;
}

static inline double f32_to_double(uint32_t bits)
{
	float f;

	memcpy(&f, &bits, 4);
	return (double)f;
}

/* binary16: 5 exponent bits (bias 15), 10 fraction bits.  Every value,
 * subnormals included, is exact in a binary32; the three cases are
 * computed side by side in 32-bit lanes and selected, which vectorises. */
static inline double f16_to_double(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t em = h & 0x7fffu;
	uint32_t normal = (em << 13) + ((127u - 15u) << 23);
	float subf = (float)em * 0x1p-24f;
	uint32_t sub, special = 0x7f800000u | ((em & 0x3ffu) << 13);
	uint32_t is_normal = 0u - (uint32_t)(em >= 0x400u);
	uint32_t is_special = 0u - (uint32_t)(em >= 0x7c00u);

	memcpy(&sub, &subf, 4);
	/* Masks, not ?:, which GCC 12 leaves as branches here. */
	return f32_to_double(sign | (sub & ~is_normal) |
		(normal & is_normal & ~is_special) | (special & is_special));
}

/* bfloat16 is the top half of a binary32. */
static inline double bf16_to_double(uint16_t h)
{
	return f32_to_double((uint32_t)h << 16);
}

/* A double rounded to nearest-even in a binary format of @p ebits
 * exponent bits and @p mbits fraction bits (binary16: 5, 10; bfloat16:
 * 8, 7), straight from the double's bits: going through binary32 first
 * would round twice.  Overflow gives infinity; NaN stays a (quiet) NaN. */
static inline uint32_t round_narrow(double d, unsigned ebits, unsigned mbits)
{
	uint64_t b = bits_of(d);
	uint32_t sign = (uint32_t)(b >> 63) << (ebits + mbits);
	uint32_t emax = (1u << ebits) - 1;
	int exp = (int)((b >> 52) & 0x7ff);
	uint64_t mant = (b & 0xfffffffffffffull) | (1ull << 52);
	int e, shift;
	uint64_t q, rem, half;

	if (exp == 0x7ff)
		return sign | (emax << mbits) |
			((b & 0xfffffffffffffull) ? 1u << (mbits - 1) : 0);
	if (exp == 0)  /* zero or a double subnormal: far below the target's range */
		return sign;
	e = exp - 1023 + (int)(emax >> 1);  /* the target's biased exponent */
	shift = 52 - (int)mbits + (e >= 1 ? 0 : 1 - e);
	if (shift > 53)
		return sign;  /* below half the smallest subnormal */
	q = mant >> shift;
	rem = mant & ((1ull << shift) - 1);
	half = 1ull << (shift - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;
	if (e >= 1) {
		/* q holds the hidden bit: (e - 1) << mbits + q is the encoding,
		 * and a carry out of the fraction bumps the exponent. */
		uint64_t enc = ((uint64_t)(e - 1) << mbits) + q;

		if (enc >= (uint64_t)emax << mbits)
			return sign | (emax << mbits);
		return sign | (uint32_t)enc;
	}
	return sign | (uint32_t)q;  /* subnormal, or rounded up to the smallest normal */
}

/* A single sequential stream reads memory at about half the rate this
 * machine's core can sustain (measured: ~4 GB/s against ~9 GB/s): one
 * stream keeps too few cache misses in flight.  So the long loops walk
 * four quarters of their range in lockstep, four streams the prefetchers
 * follow at once.  Below SPLIT_MIN elements one stream is as good. */
#define SPLIT_MIN 16384

/* --- the non-finite scan ------------------------------------------------ */

/* A non-finite value has every exponent bit set.  The fast loop only ORs
 * the verdicts (it vectorises); the rare hit is located afterwards by a
 * plain scan from the start, so the first bad index is the one reported. */
#define DEFINE_SCAN(name, load, size, expmask)                                 \
	static size_t name(const unsigned char *restrict x, size_t n)         \
	{                                                                     \
		size_t q = n >= SPLIT_MIN ? n / 4 : 0;                        \
		uint32_t any = 0;                                             \
                                                                              \
		for (size_t j = 0; j < q; j++)                                \
			any |= (uint32_t)((load(x + (size)*j) & (expmask)) == (expmask)) | \
				(uint32_t)((load(x + (size)*(j + q)) & (expmask)) == (expmask)) | \
				(uint32_t)((load(x + (size)*(j + 2 * q)) & (expmask)) == (expmask)) | \
				(uint32_t)((load(x + (size)*(j + 3 * q)) & (expmask)) == (expmask)); \
		for (size_t j = 4 * q; j < n; j++)                            \
			any |= (uint32_t)((load(x + (size)*j) & (expmask)) == (expmask)); \
		if (!any)                                                     \
			return n;                                             \
		for (size_t j = 0; j < n; j++)                                \
			if ((load(x + (size)*j) & (expmask)) == (expmask))    \
				return j;                                     \
		return n;                                                     \
	}

/* A binary64's exponent is in its high 32-bit word: 32-bit lanes
 * vectorise where SSE2 has no 64-bit compare. */
#define LDHI32(p) ld32((p) + 4)

DEFINE_SCAN(scan_f16, ld16, 2, 0x7c00u)
DEFINE_SCAN(scan_bf16, ld16, 2, 0x7f80u)
DEFINE_SCAN(scan_f32, ld32, 4, 0x7f800000u)
DEFINE_SCAN(scan_f64, LDHI32, 8, 0x7ff00000u)

size_t fdn_fedavg__find_nonfinite(const void *x, int dtype, size_t n)
{
	switch (dtype) {
	case FDN_DTYPE_F16: return scan_f16(x, n);
	case FDN_DTYPE_BF16: return scan_bf16(x, n);
	case FDN_DTYPE_F32: return scan_f32(x, n);
	case FDN_DTYPE_F64: return scan_f64(x, n);
	default: return 0;
	}
}

/* --- folding, loading, storing ----------------------------------------- */

#define ELEM(conv, load, size, j) conv(load(x + (size) * (j)))

#define DEFINE_FOLD(name, conv, load, size)                                   \
	static void name(double *restrict acc, const unsigned char *restrict x, \
		size_t n, double w, bool first)                               \
	{                                                                     \
		size_t q = n >= SPLIT_MIN ? n / 4 : 0;                        \
                                                                              \
		if (first) {                                                  \
			for (size_t j = 0; j < q; j++) {                      \
				acc[j] = w * ELEM(conv, load, size, j);                            \
				acc[j + q] = w * ELEM(conv, load, size, j + q);                    \
				acc[j + 2 * q] = w * ELEM(conv, load, size, j + 2 * q);            \
				acc[j + 3 * q] = w * ELEM(conv, load, size, j + 3 * q);            \
			}                                                     \
			for (size_t j = 4 * q; j < n; j++)                    \
				acc[j] = w * ELEM(conv, load, size, j);                            \
		} else {                                                      \
			for (size_t j = 0; j < q; j++) {                      \
				acc[j] += w * ELEM(conv, load, size, j);                           \
				acc[j + q] += w * ELEM(conv, load, size, j + q);                   \
				acc[j + 2 * q] += w * ELEM(conv, load, size, j + 2 * q);           \
				acc[j + 3 * q] += w * ELEM(conv, load, size, j + 3 * q);           \
			}                                                     \
			for (size_t j = 4 * q; j < n; j++)                    \
				acc[j] += w * ELEM(conv, load, size, j);                           \
		}                                                             \
	}                                                                     \
	static void name##_load(double *restrict out, const unsigned char *restrict x, \
		size_t n)                                                     \
	{                                                                     \
		for (size_t j = 0; j < n; j++)                                \
			out[j] = ELEM(conv, load, size, j);                                        \
	}

#define NOCONV(v) (v)
#define LDF64(p) dbl_of(ld64(p))

/* The fold and the check in one loop (see fdn_fedavg__fold_checked). */
#define BAD(load, size, expmask, j) \
	(uint32_t)((load(x + (size) * (j)) & (expmask)) == (expmask))

#define DEFINE_FOLD_CHECKED(name, conv, load, size, bits, expmask)            \
	static bool name(double *restrict acc, const unsigned char *restrict x, \
		size_t n, double w, bool first)                               \
	{                                                                     \
		size_t q = n >= SPLIT_MIN ? n / 4 : 0;                        \
		uint32_t any = 0;                                             \
                                                                              \
		if (first) {                                                  \
			for (size_t j = 0; j < q; j++) {                      \
				acc[j] = w * ELEM(conv, load, size, j);       \
				acc[j + q] = w * ELEM(conv, load, size, j + q); \
				acc[j + 2 * q] = w * ELEM(conv, load, size, j + 2 * q); \
				acc[j + 3 * q] = w * ELEM(conv, load, size, j + 3 * q); \
				any |= BAD(bits, size, expmask, j) | BAD(bits, size, expmask, j + q) | \
					BAD(bits, size, expmask, j + 2 * q) | \
					BAD(bits, size, expmask, j + 3 * q);  \
			}                                                     \
			for (size_t j = 4 * q; j < n; j++) {                  \
				acc[j] = w * ELEM(conv, load, size, j);       \
				any |= BAD(bits, size, expmask, j);           \
			}                                                     \
		} else {                                                      \
			for (size_t j = 0; j < q; j++) {                      \
				acc[j] += w * ELEM(conv, load, size, j);      \
				acc[j + q] += w * ELEM(conv, load, size, j + q); \
				acc[j + 2 * q] += w * ELEM(conv, load, size, j + 2 * q); \
				acc[j + 3 * q] += w * ELEM(conv, load, size, j + 3 * q); \
				any |= BAD(bits, size, expmask, j) | BAD(bits, size, expmask, j + q) | \
					BAD(bits, size, expmask, j + 2 * q) | \
					BAD(bits, size, expmask, j + 3 * q);  \
			}                                                     \
			for (size_t j = 4 * q; j < n; j++) {                  \
				acc[j] += w * ELEM(conv, load, size, j);      \
				any |= BAD(bits, size, expmask, j);           \
			}                                                     \
		}                                                             \
		return any != 0;                                              \
	}


DEFINE_FOLD(fold_f16, f16_to_double, ld16, 2)
DEFINE_FOLD(fold_bf16, bf16_to_double, ld16, 2)
DEFINE_FOLD(fold_f32, f32_to_double, ld32, 4)
DEFINE_FOLD(fold_f64, NOCONV, LDF64, 8)

DEFINE_FOLD_CHECKED(foldc_f16, f16_to_double, ld16, 2, ld16, 0x7c00u)
DEFINE_FOLD_CHECKED(foldc_bf16, bf16_to_double, ld16, 2, ld16, 0x7f80u)
DEFINE_FOLD_CHECKED(foldc_f32, f32_to_double, ld32, 4, ld32, 0x7f800000u)
DEFINE_FOLD_CHECKED(foldc_f64, NOCONV, LDF64, 8, LDHI32, 0x7ff00000u)

bool fdn_fedavg__fold_checked(double *acc, const void *x, int dtype, size_t n,
	double w, bool first)
{
	switch (dtype) {
	case FDN_DTYPE_F16: return foldc_f16(acc, x, n, w, first);
	case FDN_DTYPE_BF16: return foldc_bf16(acc, x, n, w, first);
	case FDN_DTYPE_F32: return foldc_f32(acc, x, n, w, first);
	case FDN_DTYPE_F64: return foldc_f64(acc, x, n, w, first);
	default: return true;
	}
}

void fdn_fedavg__fold(double *acc, const void *x, int dtype, size_t n,
	double w, bool first)
{
	switch (dtype) {
	case FDN_DTYPE_F16: fold_f16(acc, x, n, w, first); break;
	case FDN_DTYPE_BF16: fold_bf16(acc, x, n, w, first); break;
	case FDN_DTYPE_F32: fold_f32(acc, x, n, w, first); break;
	case FDN_DTYPE_F64: fold_f64(acc, x, n, w, first); break;
	default: break;
	}
}

void fdn_fedavg__load(double *out, const void *x, int dtype, size_t n)
{
	switch (dtype) {
	case FDN_DTYPE_F16: fold_f16_load(out, x, n); break;
	case FDN_DTYPE_BF16: fold_bf16_load(out, x, n); break;
	case FDN_DTYPE_F32: fold_f32_load(out, x, n); break;
	case FDN_DTYPE_F64: fold_f64_load(out, x, n); break;
	default: break;
	}
}

void fdn_fedavg__store(void *out, const double *x, int dtype, size_t n)
{
	unsigned char *o = out;

	switch (dtype) {
	case FDN_DTYPE_F16:
		for (size_t j = 0; j < n; j++) {
			uint16_t h = LE16((uint16_t)round_narrow(x[j], 5, 10));
			memcpy(o + 2 * j, &h, 2);
		}
		break;
	case FDN_DTYPE_BF16:
		for (size_t j = 0; j < n; j++) {
			uint16_t h = LE16((uint16_t)round_narrow(x[j], 8, 7));
			memcpy(o + 2 * j, &h, 2);
		}
		break;
	case FDN_DTYPE_F32:
		for (size_t j = 0; j < n; j++) {
			float f = (float)x[j];  /* C: to nearest-even */
			uint32_t u;

			memcpy(&u, &f, 4);
			u = LE32(u);
			memcpy(o + 4 * j, &u, 4);
		}
		break;
	case FDN_DTYPE_F64:
		for (size_t j = 0; j < n; j++) {
			uint64_t u = LE64(bits_of(x[j]));
			memcpy(o + 8 * j, &u, 8);
		}
		break;
	default:
		break;
	}
}

/* --- the server step ---------------------------------------------------- */

void fdn_fedavg__server_step(const fdn_fedavg__step *p, size_t n,
	const double *restrict sum, double *restrict x, double *restrict m,
	double *restrict v)
{
	const double lr = p->lr, total = p->total, ws = p->weights_share;
	const double b1 = p->beta1, b2 = p->beta2, tau = p->tau, mom = p->momentum;

	switch (p->strategy) {
	case FDN_STRATEGY_FEDAVG:
	case FDN_STRATEGY_FEDPROX: {
		/* x + lr·(sum/total − ws·x), arranged so that lr = 1 with
		 * every update sent as weights gives exactly sum/total. */
		const double a = 1.0 - lr * ws;

		for (size_t j = 0; j < n; j++)
			x[j] = a * x[j] + lr * (sum[j] / total);
		break;
	}
	case FDN_STRATEGY_FEDAVGM:
		for (size_t j = 0; j < n; j++) {
			double d = sum[j] / total - ws * x[j];

			m[j] = mom * m[j] + d;
			x[j] = x[j] + lr * m[j];
		}
		break;
	case FDN_STRATEGY_FEDADAGRAD:
		for (size_t j = 0; j < n; j++) {
			double d = sum[j] / total - ws * x[j];

			v[j] = v[j] + d * d;
			x[j] = x[j] + lr * d / (sqrt(v[j]) + tau);
		}
		break;
	case FDN_STRATEGY_FEDADAM:
		for (size_t j = 0; j < n; j++) {
			double d = sum[j] / total - ws * x[j];

			m[j] = b1 * m[j] + (1.0 - b1) * d;
			v[j] = b2 * v[j] + (1.0 - b2) * (d * d);
			x[j] = x[j] + lr * m[j] / (sqrt(v[j]) + tau);
		}
		break;
	case FDN_STRATEGY_FEDYOGI:
		for (size_t j = 0; j < n; j++) {
			double d = sum[j] / total - ws * x[j];
			double d2 = d * d, s = v[j] - d2;
			double sgn = (double)((s > 0) - (s < 0));

			m[j] = b1 * m[j] + (1.0 - b1) * d;
			v[j] = v[j] - (1.0 - b2) * d2 * sgn;
			x[j] = x[j] + lr * m[j] / (sqrt(v[j]) + tau);
		}
		break;
	default:
		break;
	}
}

/* --- robust strategies -------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts one coordinate's k values: insertion sort for the usual handful
 * of sites, the C library's beyond. */
static void sort_values(double *c, size_t k)
{
	if (k > 32) {
		qsort(c, k, sizeof(*c), cmp_double);
		return;
	}
	for (size_t i = 1; i < k; i++) {
		double t = c[i];
		size_t j = i;

		for (; j > 0 && c[j - 1] > t; j--)
			c[j] = c[j - 1];
		c[j] = t;
	}
}

void fdn_fedavg__median(double *out, double *cols, size_t n, size_t k)
{
	for (size_t j = 0; j < n; j++) {
		double *c = cols + j * k;

		sort_values(c, k);
		out[j] = k % 2 ? c[k / 2] : (c[k / 2 - 1] + c[k / 2]) / 2.0;
	}
}

void fdn_fedavg__trimmed_mean(double *out, double *cols, size_t n, size_t k,
	size_t cut)
{
	for (size_t j = 0; j < n; j++) {
		double *c = cols + j * k, s = 0;

		sort_values(c, k);
		/* Summed in sorted order: the result does not depend on the
		 * order the updates arrived in. */
		for (size_t i = cut; i < k - cut; i++)
			s += c[i];
		out[j] = s / (double)(k - cut * 2);
	}
}
