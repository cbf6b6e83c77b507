/*
 * Keyed, deterministic replacements: UIDs, patient pseudonyms and the
 * per-patient date offset, all BLAKE2b keyed with the site key so that
 * the same input gives the same output in every file and every run, and
 * nobody without the key can reverse or recompute them.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "deid_private.h"

/* Each use of the key hashes its own domain first, so a UID can never
 * hash to the pseudonym or date offset of an equal patient ID. */
static void keyed_hash(unsigned char *out, size_t outlen, const fdn_deid_profile *p,
	const char *domain, const char *data, size_t len)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, p->key, FDN_DEID_KEY_BYTES, outlen);
	crypto_generichash_update(&st, (const unsigned char *)domain, strlen(domain) + 1);
	crypto_generichash_update(&st, (const unsigned char *)data, len);
	crypto_generichash_final(&st, out, outlen);
	sodium_memzero(&st, sizeof(st));
}

static size_t trim_len(const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
		len--;
	return len;
}

/* Decimal digits of a 128-bit big-endian number, without leading zeros. */
static size_t to_decimal(char *out, const unsigned char in[16])
{
	unsigned char n[16];
	char rev[48];
	size_t len = 0;
	bool zero;

	memcpy(n, in, sizeof(n));
	do {
		unsigned int rem = 0;
		zero = true;
		for (size_t i = 0; i < sizeof(n); i++) {
			unsigned int cur = (rem << 8) | n[i];
			n[i] = (unsigned char)(cur / 10);
			rem = cur % 10;
			zero = zero && n[i] == 0;
		}
		rev[len++] = (char)('0' + rem);
	} while (!zero);
	for (size_t i = 0; i < len; i++)
		out[i] = rev[len - 1 - i];
	out[len] = '\0';
	return len;
}

int fdn_deid__uid_remap(fdn_buf *out, const fdn_deid_profile *p, const char *uid,
	size_t len)
{
	unsigned char h[16];
	char dec[48];

	keyed_hash(h, sizeof(h), p, "uid", uid, trim_len(uid, len));
	to_decimal(dec, h);
	return fdn_buf__printf(out, "2.25.%s", dec);
}

int fdn_deid__pseudonym(fdn_buf *out, const fdn_deid_profile *p, const char *id,
	size_t len, bool short_form)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned char h[16];
	char b32[27];
	size_t n = 0, want = short_form ? 12 : 26;
	unsigned int acc = 0, bits = 0;

	keyed_hash(h, sizeof(h), p, "patient-id", id, trim_len(id, len));
	for (size_t i = 0; i < sizeof(h) && n < want; i++) {
		acc = (acc << 8) | h[i];
		bits += 8;
		while (bits >= 5 && n < want) {
			b32[n++] = alphabet[(acc >> (bits - 5)) & 31u];
			bits -= 5;
		}
		acc &= (1u << bits) - 1u;
	}
	if (n < want)
		b32[n++] = alphabet[(acc << (5 - bits)) & 31u];
	b32[n] = '\0';
	return fdn_buf__printf(out, "FDN-%s", b32);
}

long fdn_deid__date_offset(const fdn_deid_profile *p, const char *patient_id)
{
	unsigned char h[8];
	uint64_t v = 0;

	keyed_hash(h, sizeof(h), p, "date-offset", patient_id, trim_len(patient_id,
		strlen(patient_id)));
	for (size_t i = 0; i < sizeof(h); i++)
		v = (v << 8) | h[i];
	/* 1 to 3650 days back: about ten years, so a date gives away little,
	 * and never zero, so no date survives unchanged. */
	return -(long)(1 + v % 3650u);
}

/* --- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ------ */

static long days_from_civil(long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(long y, unsigned m)
{
	static const unsigned char dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

static unsigned digits_at(const char *s, size_t len, size_t n)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (i >= len || s[i] < '0' || s[i] > '9')
			return ~0u;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v;
}

static size_t count_digits(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

/*
 * Shifts the date that starts @p s: @p ndig (4, 6 or 8) digits.  A
 * partial date (YYYY, YYYYMM) shifts its first day and keeps its
 * precision.
 */
static int shift_date_part(fdn_buf *out, const char *s, size_t ndig, long days)
{
	unsigned y = digits_at(s, ndig, 4);
	unsigned m = ndig >= 6 ? digits_at(s + 4, 2, 2) : 1;
	unsigned d = ndig >= 8 ? digits_at(s + 6, 2, 2) : 1;
	long ny;
	unsigned nm, nd;

	if (y == ~0u || m < 1 || m > 12 || d < 1 || d > days_in_month((long)y, m))
		return FDN_EFORMAT;
	civil_from_days(days_from_civil((long)y, m, d) + days, &ny, &nm, &nd);
	if (ny < 1 || ny > 9999)
		return FDN_EFORMAT;
	if (ndig == 4)
		return fdn_buf__printf(out, "%04ld", ny);
	if (ndig == 6)
		return fdn_buf__printf(out, "%04ld%02u", ny, nm);
	return fdn_buf__printf(out, "%04ld%02u%02u", ny, nm, nd);
}

/* Length of the time, fraction and UTC offset that follow a DT's date. */
static size_t dt_tail(const char *s, size_t len)
{
	size_t i = count_digits(s, len);

	if (i % 2 != 0 || i > 6)
		return (size_t)-1;
	if (i < len && s[i] == '.') {
		size_t f = count_digits(s + i + 1, len - i - 1);
		if (i != 6 || f < 1 || f > 6)
			return (size_t)-1;
		i += 1 + f;
	}
	/* "&ZZXX" only when exactly four digits follow the sign and then the
	 * value (or the range) ends: "-0500" is an offset, "-2020..." a range. */
	if (i + 5 <= len && (s[i] == '+' || s[i] == '-') && count_digits(s + i + 1, 4) == 4 &&
	    (i + 5 == len || s[i + 5] == '-'))
		i += 5;
	return i;
}

/* One date or date-time at the start of @p s; *used gets its length. */
static int shift_one(fdn_buf *out, const char *s, size_t len, bool is_dt, long days,
	size_t *used)
{
	size_t nd = count_digits(s, len), date_digits, tail = 0;
	int rc;

	date_digits = nd >= 8 ? 8 : nd;
	if (date_digits != 4 && date_digits != 6 && date_digits != 8)
		return FDN_EFORMAT;
	if (!is_dt && nd != date_digits)
		return FDN_EFORMAT;
	if (is_dt) {
		if (date_digits < 8 && nd != date_digits)
			return FDN_EFORMAT;
		tail = dt_tail(s + date_digits, len - date_digits);
		if (tail == (size_t)-1)
			return FDN_EFORMAT;
	}
	if ((rc = shift_date_part(out, s, date_digits, days)) != 0)
		return rc;
	*used = date_digits + tail;
	return fdn_buf__put(out, s + date_digits, tail);
}

/* One value: a date, or a range "a-b", "-b", "a-". */
static int shift_value(fdn_buf *out, const char *s, size_t len, bool is_dt, long days)
{
	size_t used = 0;
	int rc;

	while (len > 0 && s[0] == ' ')
		s++, len--;
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len == 0)
		return 0;
	if (s[0] != '-') {
		if ((rc = shift_one(out, s, len, is_dt, days, &used)) != 0)
			return rc;
		if (used == len)
			return 0;
		if (s[used] != '-')
			return FDN_EFORMAT;
	}
	if ((rc = fdn_buf__put(out, "-", 1)) != 0)
		return rc;
	s += used + 1;
	len -= used + 1;
	if (len == 0)
		return 0;
	if ((rc = shift_one(out, s, len, is_dt, days, &used)) != 0)
		return rc;
	return used == len ? 0 : FDN_EFORMAT;
}

int fdn_deid__shift_dates(fdn_buf *out, const char *v, size_t len, bool is_dt, long days)
{
	len = trim_len(v, len);
	for (size_t start = 0; start <= len;) {
		const char *bs = memchr(v + start, '\\', len - start);
		size_t end = bs ? (size_t)(bs - v) : len;
		int rc;

		if (start > 0 && (rc = fdn_buf__put(out, "\\", 1)) != 0)
			return rc;
		if ((rc = shift_value(out, v + start, end - start, is_dt, days)) != 0)
			return rc;
		start = end + 1;
	}
	return 0;
}

int fdn_deid_pseudonym_for(fdn_buf *out, const fdn_deid_profile *profile,
	const char *patient_id)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(profile, "profile");
	FDN__CHECK_ARG(patient_id, "patient_id");
	fdn_buf__clear(out);
	return fdn_deid__pseudonym(out, profile, patient_id, strlen(patient_id), false);
}
