/*
 * DICOM Specific Character Set (0008,0005) to and from UTF-8.
 *
 * Text is read the way ISO 2022 describes it: bytes below 0x80 belong to
 * the set designated to G0, bytes from 0x80 up to the one designated to
 * G1; escape sequences change either, and the delimiters of PS3.5
 * 6.1.2.5.3 put back the initial designation (value 1).  Each run of
 * bytes under one designation goes through glibc's iconv in the ISO 8859
 * or EUC form of its set, so iconv never sees an escape sequence and an
 * error keeps the exact byte offset.  Error messages name offsets, byte
 * values and code points, never the text: it is usually a patient name.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <iconv.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "charset.h"
#include "../core/core_private.h"

#define ESC 0x1b

/* --- iconv converters ----------------------------------------------------- */

enum conv {
	CONV_8859_1, CONV_8859_2, CONV_8859_3, CONV_8859_4, CONV_8859_5,
	CONV_8859_6, CONV_8859_7, CONV_8859_8, CONV_8859_9, CONV_8859_15,
	CONV_TIS620, CONV_EUCJP, CONV_EUCKR, CONV_EUCCN, CONV_GB18030,
	CONV_GBK, CONV_COUNT
};

static const char *const conv_names[CONV_COUNT] = {
	[CONV_8859_1] = "ISO-8859-1", [CONV_8859_2] = "ISO-8859-2",
	[CONV_8859_3] = "ISO-8859-3", [CONV_8859_4] = "ISO-8859-4",
	[CONV_8859_5] = "ISO-8859-5", [CONV_8859_6] = "ISO-8859-6",
	[CONV_8859_7] = "ISO-8859-7", [CONV_8859_8] = "ISO-8859-8",
	[CONV_8859_9] = "ISO-8859-9", [CONV_8859_15] = "ISO-8859-15",
	[CONV_TIS620] = "TIS-620", [CONV_EUCJP] = "EUC-JP",
	[CONV_EUCKR] = "EUC-KR", [CONV_EUCCN] = "EUC-CN",
	[CONV_GB18030] = "GB18030", [CONV_GBK] = "GBK",
};

enum dir { TO_UTF8, FROM_UTF8 };

/*
 * An iconv_t may be used by one thread at a time, and opening one costs
 * about 300 ns, several times a short conversion.  Idle descriptors wait
 * in these slots; a call takes one with an atomic exchange and puts it
 * back with a compare-exchange, so threads never share one and nothing
 * is tied to a thread's lifetime.  Surplus descriptors are closed.
 */
#define POOL_SLOTS 4
static _Atomic(iconv_t) pool[CONV_COUNT][2][POOL_SLOTS];

static iconv_t pool_take(int conv, int dir)
{
	int i;

	for (i = 0; i < POOL_SLOTS; i++) {
		iconv_t cd = atomic_exchange(&pool[conv][dir][i], NULL);
		if (cd)
			return cd;
	}
	if (dir == TO_UTF8)
		return iconv_open("UTF-8", conv_names[conv]);
	return iconv_open(conv_names[conv], "UTF-8");
}

static void pool_give(int conv, int dir, iconv_t cd)
{
	int i;

	/* Left in whatever shift state: every user resets it first. */
	for (i = 0; i < POOL_SLOTS; i++) {
		iconv_t expected = NULL;
		if (atomic_compare_exchange_strong(&pool[conv][dir][i],
			    &expected, cd))
			return;
	}
	iconv_close(cd);
}

static int conv_take(int conv, int dir, iconv_t *out)
{
	*out = pool_take(conv, dir);
	if (*out != (iconv_t)-1)
		return 0;
	return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
		"the C library's iconv cannot convert %s %s UTF-8",
		conv_names[conv], dir == TO_UTF8 ? "to" : "from");
}

/* The descriptors one call holds, taken on first use; a call needs one
 * or two, so a short list beats clearing and scanning a table of all. */
struct cds {
	unsigned n;
	unsigned char id[CONV_COUNT * 2];
	iconv_t cd[CONV_COUNT * 2];
};

static int cds_get(struct cds *c, int conv, int dir, iconv_t *out)
{
	unsigned char id = (unsigned char)(conv * 2 + dir);
	iconv_t cd;

	for (unsigned i = 0; i < c->n; i++) {
		if (c->id[i] == id) {
			*out = c->cd[i];
			return 0;
		}
	}
	if (conv_take(conv, dir, &cd) != 0)
		return FDN_EUNSUPPORTED;
	c->id[c->n] = id;
	c->cd[c->n++] = cd;
	*out = cd;
	return 0;
}

static void cds_release(struct cds *c)
{
	for (unsigned i = 0; i < c->n; i++)
		pool_give(c->id[i] / 2, c->id[i] % 2, c->cd[i]);
	c->n = 0;
}

/*
 * Appends the conversion of @p len bytes to @p out.  Returns 0, 1 with
 * @p done the offset of the first byte iconv rejected (or of a sequence
 * cut short by the end), or a negative error code.
 */
static int iconv_append(fdn_buf *out, iconv_t cd, const char *in, size_t len,
	size_t *done)
{
	char *ip = (char *)in;
	size_t il = len;

	iconv(cd, NULL, NULL, NULL, NULL);
	while (il) {
		size_t room, ol, r;
		char *op;
		int rc;

		/* Every set here takes at most 4 UTF-8 bytes per input byte;
		 * E2BIG below copes with anything larger. */
		if (fdn__mul_overflow(il, 4, &room) ||
		    fdn__add_overflow(room, 8, &room))
			return fdn__error_oom();
		if ((rc = fdn_buf__grow(out, room)) != 0)
			return rc;
		op = out->ptr + out->size;
		ol = out->reserved - out->size - 1;
		r = iconv(cd, &ip, &il, &op, &ol);
		out->size = (size_t)(op - out->ptr);
		out->ptr[out->size] = '\0';
		if (r == (size_t)-1 && errno != E2BIG) {
			*done = (size_t)(ip - in);
			return 1;
		}
	}
	return 0;
}

/* --- UTF-8 ---------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at @p s, 0 if there is none. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2; c &= 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3; c &= 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4; c &= 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Offset of the first byte that does not start well-formed UTF-8, or @p n. */
static size_t utf8_check(const unsigned char *s, size_t n, bool *ascii)
{
	size_t i = 0, k;
	uint32_t cp;

	*ascii = true;
	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		*ascii = false;
		if ((k = utf8_next(s + i, n - i, &cp)) == 0)
			return i;
		i += k;
	}
	return n;
}

static int utf8_put(fdn_buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp; n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6); n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12); n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18); n = 4;
	}
	for (size_t i = 1; i < n; i++) {
		unsigned shift = 6 * (unsigned)(n - 1 - i);
		b[i] = (unsigned char)(0x80 | ((cp >> shift) & 0x3f));
	}
	return fdn_buf__put(out, b, n);
}

/* --- character sets and defined terms ------------------------------------- */

enum set_id {
	SET_NONE, SET_IR6, SET_IR14, SET_IR13, SET_IR100, SET_IR101,
	SET_IR109, SET_IR110, SET_IR144, SET_IR127, SET_IR126, SET_IR138,
	SET_IR148, SET_IR203, SET_IR166, SET_IR87, SET_IR159, SET_IR149,
	SET_IR58, SET_COUNT
};

enum set_kind {
	KIND_ASCII,    /* no conversion: ISO-IR 6, and ISO-IR 14 (see below) */
	KIND_KATAKANA, /* ISO-IR 13: 0xA1..0xDF are U+FF61..U+FF9F */
	KIND_SBCS,     /* the upper half of an ISO 8859-like set */
	KIND_JIS,      /* a 94x94 set in G0, through EUC-JP */
	KIND_EUC       /* a 94x94 set in G1, through its EUC form */
};

struct set_info {
	const char *name;
	const char *esc;     /* the escape sequence after ESC */
	unsigned char g;     /* 0: designated to G0, 1: to G1 */
	unsigned char kind;
	unsigned char conv;
};

/*
 * ISO-IR 14 (JIS X 0201 romaji) differs from ASCII at 0x5C (yen sign) and
 * 0x7E (overline), but its 0x5C is also the value separator (PS3.5
 * 6.1.2.5.3), so it is read as ASCII, as pydicom does: hosts split on '\'.
 */
static const struct set_info sets[SET_COUNT] = {
	[SET_NONE] = { "no G1 set", "", 1, KIND_ASCII, 0 },
	[SET_IR6] = { "ISO-IR 6", "(B", 0, KIND_ASCII, 0 },
	[SET_IR14] = { "ISO-IR 14", "(J", 0, KIND_ASCII, 0 },
	[SET_IR13] = { "ISO-IR 13", ")I", 1, KIND_KATAKANA, 0 },
	[SET_IR100] = { "ISO-IR 100", "-A", 1, KIND_SBCS, CONV_8859_1 },
	[SET_IR101] = { "ISO-IR 101", "-B", 1, KIND_SBCS, CONV_8859_2 },
	[SET_IR109] = { "ISO-IR 109", "-C", 1, KIND_SBCS, CONV_8859_3 },
	[SET_IR110] = { "ISO-IR 110", "-D", 1, KIND_SBCS, CONV_8859_4 },
	[SET_IR144] = { "ISO-IR 144", "-L", 1, KIND_SBCS, CONV_8859_5 },
	[SET_IR127] = { "ISO-IR 127", "-G", 1, KIND_SBCS, CONV_8859_6 },
	[SET_IR126] = { "ISO-IR 126", "-F", 1, KIND_SBCS, CONV_8859_7 },
	[SET_IR138] = { "ISO-IR 138", "-H", 1, KIND_SBCS, CONV_8859_8 },
	[SET_IR148] = { "ISO-IR 148", "-M", 1, KIND_SBCS, CONV_8859_9 },
	[SET_IR203] = { "ISO-IR 203", "-b", 1, KIND_SBCS, CONV_8859_15 },
	[SET_IR166] = { "ISO-IR 166", "-T", 1, KIND_SBCS, CONV_TIS620 },
	[SET_IR87] = { "ISO-IR 87", "$B", 0, KIND_JIS, CONV_EUCJP },
	[SET_IR159] = { "ISO-IR 159", "$(D", 0, KIND_JIS, CONV_EUCJP },
	[SET_IR149] = { "ISO-IR 149", "$)C", 1, KIND_EUC, CONV_EUCKR },
	[SET_IR58] = { "ISO-IR 58", "$)A", 1, KIND_EUC, CONV_EUCCN },
};

/* Character sets that replace ISO 2022 altogether (PS3.3 Table C.12-5). */
enum whole { WHOLE_NO, WHOLE_UTF8, WHOLE_GB18030, WHOLE_GBK };

/*
 * Defined terms, keyed by their spelling with case, spaces, '_' and '-'
 * dropped: "ISO_IR 100", "ISO-IR 100", "iso_ir100" all meet "ISOIR100".
 * g0/g1 is the designation the term makes as value 1; extra a set it
 * makes available to escape sequences.
 */
struct term {
	const char *key;
	unsigned char g0, g1, extra, whole;
};

#define SB(key, g1) { key, SET_IR6, g1, SET_NONE, WHOLE_NO }
#define MB(key, set) { key, SET_IR6, SET_NONE, set, WHOLE_NO }
#define WH(key, w) { key, SET_NONE, SET_NONE, SET_NONE, w }

static const struct term terms[] = {
	SB("", SET_NONE), SB("ISOIR6", SET_NONE), SB("ISO2022IR6", SET_NONE),
	SB("ISOIR100", SET_IR100), SB("ISO2022IR100", SET_IR100),
	SB("ISOIR101", SET_IR101), SB("ISO2022IR101", SET_IR101),
	SB("ISOIR109", SET_IR109), SB("ISO2022IR109", SET_IR109),
	SB("ISOIR110", SET_IR110), SB("ISO2022IR110", SET_IR110),
	SB("ISOIR144", SET_IR144), SB("ISO2022IR144", SET_IR144),
	SB("ISOIR127", SET_IR127), SB("ISO2022IR127", SET_IR127),
	SB("ISOIR126", SET_IR126), SB("ISO2022IR126", SET_IR126),
	SB("ISOIR138", SET_IR138), SB("ISO2022IR138", SET_IR138),
	SB("ISOIR148", SET_IR148), SB("ISO2022IR148", SET_IR148),
	SB("ISOIR203", SET_IR203), SB("ISO2022IR203", SET_IR203),
	SB("ISOIR166", SET_IR166), SB("ISO2022IR166", SET_IR166),
	{ "ISOIR13", SET_IR14, SET_IR13, SET_NONE, WHOLE_NO },
	{ "ISO2022IR13", SET_IR14, SET_IR13, SET_NONE, WHOLE_NO },
	/* The multi-byte sets also under the "ISO_IR" spelling met in files. */
	MB("ISO2022IR87", SET_IR87), MB("ISOIR87", SET_IR87),
	MB("ISO2022IR159", SET_IR159), MB("ISOIR159", SET_IR159),
	MB("ISO2022IR149", SET_IR149), MB("ISOIR149", SET_IR149),
	MB("ISO2022IR58", SET_IR58), MB("ISOIR58", SET_IR58),
	WH("ISOIR192", WHOLE_UTF8), WH("UTF8", WHOLE_UTF8),
	WH("GB18030", WHOLE_GB18030), WH("GBK", WHOLE_GBK),
};

/* A parsed Specific Character Set value. */
struct scs {
	unsigned char g0, g1;     /* the initial designation */
	unsigned char g1_default; /* G1 assumed when none is designated */
	unsigned char whole;
	unsigned char nsets;
	unsigned char set[SET_COUNT]; /* the sets named, in value order */
};

#define KEY_MAX 24

static bool term_key(char *key, const char *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == ' ' || c == '_' || c == '-')
			continue;
		if (k + 1 >= KEY_MAX)
			return false;
		key[k++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
	}
	key[k] = '\0';
	return true;
}

static const struct term *term_find(const char *v, size_t n)
{
	char key[KEY_MAX];

	if (!term_key(key, v, n))
		return NULL;
	for (size_t i = 0; i < sizeof(terms) / sizeof(terms[0]); i++)
		if (strcmp(terms[i].key, key) == 0)
			return &terms[i];
	return NULL;
}

static void scs_add(struct scs *s, unsigned char set)
{
	if (set == SET_NONE || memchr(s->set, set, s->nsets))
		return;
	s->set[s->nsets++] = set;
}

static void trim(const char **v, size_t *n)
{
	while (*n && **v == ' ')
		(*v)++, (*n)--;
	while (*n && (*v)[*n - 1] == ' ')
		(*n)--;
}

/* Reads value @p k (@p n bytes at @p v) of the Specific Character Set. */
static int scs_value(struct scs *s, unsigned k, const char *v, size_t n)
{
	const struct term *t;

	trim(&v, &n);
	if (k > 0 && n == 0)
		return 0;
	if ((t = term_find(v, n)) == NULL)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"unsupported Specific Character Set term '%.*s'",
			(int)(n > 64 ? 64 : n), v);
	if (t->whole && k > 0)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"Specific Character Set '%.*s' cannot follow another value "
			"(PS3.3 Table C.12-5)", (int)(n > 64 ? 64 : n), v);
	if (k == 0) {
		s->whole = t->whole;
		s->g0 = t->g0;
		s->g1 = t->g1;
	}
	scs_add(s, t->g0);
	scs_add(s, t->g1);
	scs_add(s, t->extra);
	return 0;
}

static int scs_parse(struct scs *s, const char *raw)
{
	unsigned k = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	for (;;) {
		const char *sep = strchr(raw, '\\');
		size_t n = sep ? (size_t)(sep - raw) : strlen(raw);
		if ((rc = scs_value(s, k++, raw, n)) != 0)
			return rc;
		/* The values after a stand-alone set are never looked at. */
		if (!sep || s->whole)
			break;
		raw = sep + 1;
	}
	/* Leniency: G1 bytes with nothing designated (a writer that did not
	 * repeat the escape after a delimiter) use the one G1 set named. */
	if (s->g1 == SET_NONE) {
		for (unsigned i = 0; i < s->nsets; i++) {
			if (sets[s->set[i]].g != 1)
				continue;
			s->g1_default = s->g1_default ? SET_COUNT : s->set[i];
		}
		if (s->g1_default == SET_COUNT)
			s->g1_default = SET_NONE;
	} else {
		s->g1_default = s->g1;
	}
	return 0;
}

/* Parsing costs more than a short conversion; most calls repeat the last. */
static _Thread_local struct {
	bool valid;
	char raw[64];
	struct scs scs;
} scs_cache;

static int scs_get(struct scs *s, const char *raw)
{
	size_t n;
	int rc;

	if (!raw)
		raw = "";
	n = strlen(raw);
	if (scs_cache.valid && n < sizeof(scs_cache.raw) &&
	    memcmp(scs_cache.raw, raw, n + 1) == 0) {
		*s = scs_cache.scs;
		return 0;
	}
	if ((rc = scs_parse(s, raw)) != 0)
		return rc;
	if (n < sizeof(scs_cache.raw)) {
		memcpy(scs_cache.raw, raw, n + 1);
		scs_cache.scs = *s;
		scs_cache.valid = true;
	}
	return 0;
}

/* --- delimiters ----------------------------------------------------------- */

enum { DELIM_BACKSLASH = 1, DELIM_PN = 2 };

/* LT, ST, UT and UR hold one value, so their '\' is only a character. */
static unsigned delims_for(const char *vr)
{
	if (!vr || !vr[0] || !vr[1])
		return DELIM_BACKSLASH;
	if (vr[0] == 'P' && vr[1] == 'N')
		return DELIM_BACKSLASH | DELIM_PN;
	if ((vr[1] == 'T' && (vr[0] == 'L' || vr[0] == 'S' || vr[0] == 'U')) ||
	    (vr[0] == 'U' && vr[1] == 'R'))
		return 0;
	return DELIM_BACKSLASH;
}

/* PS3.5 6.1.2.5.3: control characters other than ESC, '\' and PN's '^', '='. */
static bool is_delim(unsigned delims, unsigned char b)
{
	if (b < 0x20)
		return b != ESC;
	if (b == '\\')
		return delims & DELIM_BACKSLASH;
	return (delims & DELIM_PN) && (b == '^' || b == '=');
}

static bool plain_ascii(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x80 || p[i] == ESC)
			return false;
	return true;
}

/* --- decoding ------------------------------------------------------------- */

struct dec {
	fdn_buf *out;
	const unsigned char *p;
	size_t len;
	const struct scs *scs;
	unsigned delims;
	unsigned char g0, g1;
	struct cds cds;
};

static int bad_byte(const struct dec *d, size_t at, const char *set)
{
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"invalid byte 0x%02X at offset %zu for character set %s",
		d->p[at], at, set);
}

static int dec_escape(struct dec *d, size_t *i)
{
	size_t j = *i + 1, n;
	char seq[4];

	while (j < d->len && d->p[j] >= 0x20 && d->p[j] <= 0x2f)
		j++;
	if (j >= d->len || d->p[j] < 0x30 || d->p[j] > 0x7e)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"incomplete escape sequence at offset %zu", *i);
	n = j - *i;
	if (n < sizeof(seq)) {
		memcpy(seq, d->p + *i + 1, n);
		seq[n] = '\0';
		/* ESC $ ( B is the long form of ESC $ B. */
		if (strcmp(seq, "$(B") == 0)
			seq[1] = 'B', seq[2] = '\0';
		for (int s = SET_IR6; s < SET_COUNT; s++) {
			if (strcmp(seq, sets[s].esc) != 0)
				continue;
			if (sets[s].g == 0)
				d->g0 = (unsigned char)s;
			else
				d->g1 = (unsigned char)s;
			*i = j + 1;
			return 0;
		}
	}
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"unknown escape sequence ESC %.*s at offset %zu",
		(int)(n > 8 ? 8 : n), (const char *)d->p + *i + 1, *i);
}

static int dec_katakana(struct dec *d, size_t from, size_t to)
{
	int rc = 0;

	for (size_t i = from; i < to && !rc; i++) {
		unsigned char b = d->p[i];
		if (b < 0x80)
			rc = fdn_buf__put(d->out, &b, 1);
		else if (b >= 0xa1 && b <= 0xdf)
			rc = utf8_put(d->out, 0xff61u + (b - 0xa1u));
		else
			rc = bad_byte(d, i, sets[SET_IR13].name);
	}
	return rc;
}

/* Bytes [from, to): below 0x80 ASCII, above in the G1 set. */
static int dec_g1(struct dec *d, size_t from, size_t to)
{
	unsigned char g1 = d->g1 ? d->g1 : d->scs->g1_default;
	const struct set_info *set = &sets[g1];
	size_t done;
	iconv_t cd;
	int rc;

	if (plain_ascii(d->p + from, to - from))
		return fdn_buf__put(d->out, d->p + from, to - from);
	if (set->kind == KIND_KATAKANA)
		return dec_katakana(d, from, to);
	if (set->kind == KIND_ASCII) {
		while (d->p[from] < 0x80)
			from++;
		return bad_byte(d, from, d->scs->nsets > 1 ?
			"ISO-IR 6 with no G1 set designated" :
			"ISO-IR 6 (the default repertoire)");
	}
	if ((rc = cds_get(&d->cds, set->conv, TO_UTF8, &cd)) != 0)
		return rc;
	rc = iconv_append(d->out, cd, (const char *)d->p + from, to - from,
		&done);
	if (rc == 1)
		return bad_byte(d, from + done, set->name);
	return rc;
}

/* Bytes from @p *i under a single-byte G0, up to a change of designation. */
static int dec_sb_run(struct dec *d, size_t *i)
{
	bool initial = d->g0 == d->scs->g0 && d->g1 == d->scs->g1;
	size_t j = *i + 1;
	int rc;

	while (j < d->len && d->p[j] != ESC &&
	       (initial || !is_delim(d->delims, d->p[j])))
		j++;
	rc = dec_g1(d, *i, j);
	*i = j;
	return rc;
}

/* Pairs of GL bytes of JIS X 0208 or 0212, through their EUC-JP form. */
static int dec_jis(struct dec *d, size_t *i)
{
	bool x0212 = d->g0 == SET_IR159;
	size_t w = x0212 ? 3 : 2, j = *i, done;
	unsigned char tmp[3 * 128];
	iconv_t cd;
	int rc;

	while (j < d->len && d->p[j] > 0x20 && d->p[j] < 0x7f)
		j++;
	if ((j - *i) % 2)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"incomplete 2-byte %s character at offset %zu",
			sets[d->g0].name, j - 1);
	if ((rc = cds_get(&d->cds, CONV_EUCJP, TO_UTF8, &cd)) != 0)
		return rc;
	while (*i < j) {
		size_t pairs = (j - *i) / 2, n = 0;
		if (pairs > sizeof(tmp) / 3)
			pairs = sizeof(tmp) / 3;
		for (size_t k = 0; k < pairs * 2; k += 2) {
			if (x0212)
				tmp[n++] = 0x8f;
			tmp[n++] = d->p[*i + k] | 0x80;
			tmp[n++] = d->p[*i + k + 1] | 0x80;
		}
		rc = iconv_append(d->out, cd, (const char *)tmp, n, &done);
		if (rc == 1)
			return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
				"invalid %s character at offset %zu",
				sets[d->g0].name, *i + done / w * 2);
		if (rc)
			return rc;
		*i += pairs * 2;
	}
	return 0;
}

/* Under a 2-byte G0: pairs, G1 bytes, or a space or control by itself. */
static int dec_jis_mode(struct dec *d, size_t *i)
{
	unsigned char b = d->p[*i];
	size_t j = *i;
	int rc;

	if (b > 0x20 && b < 0x7f)
		return dec_jis(d, i);
	if (b < 0x80) {
		(*i)++;
		return fdn_buf__put(d->out, &b, 1);
	}
	while (j < d->len && d->p[j] >= 0x80)
		j++;
	rc = dec_g1(d, *i, j);
	*i = j;
	return rc;
}

static int dec_iso2022(struct dec *d)
{
	size_t i = 0;
	int rc = 0;

	d->g0 = d->scs->g0;
	d->g1 = d->scs->g1;
	while (i < d->len && !rc) {
		unsigned char b = d->p[i];
		bool jis = sets[d->g0].kind == KIND_JIS;
		if (b == ESC) {
			rc = dec_escape(d, &i);
			continue;
		}
		/* Inside a 2-byte G0, '^' and the like are halves of a
		 * character: the writer must have left it before a delimiter. */
		if (is_delim(d->delims, b) && (b < 0x20 || !jis)) {
			d->g0 = d->scs->g0;
			d->g1 = d->scs->g1;
			jis = false;
		}
		rc = jis ? dec_jis_mode(d, &i) : dec_sb_run(d, &i);
	}
	return rc;
}

static int dec_utf8(fdn_buf *out, const unsigned char *p, size_t len)
{
	bool ascii;
	size_t bad = utf8_check(p, len, &ascii);

	if (bad < len)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"invalid UTF-8 byte 0x%02X at offset %zu", p[bad], bad);
	return fdn_buf__put(out, p, len);
}

static int dec_whole(fdn_buf *out, int conv, const unsigned char *p,
	size_t len)
{
	size_t done;
	iconv_t cd;
	int rc = conv_take(conv, TO_UTF8, &cd);

	if (rc)
		return rc;
	rc = iconv_append(out, cd, (const char *)p, len, &done);
	pool_give(conv, TO_UTF8, cd);
	if (rc == 1)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"invalid byte 0x%02X at offset %zu for character set %s",
			p[done], done, conv_names[conv]);
	return rc;
}

static int whole_conv(unsigned char whole)
{
	return whole == WHOLE_GB18030 ? CONV_GB18030 : CONV_GBK;
}

int fdn_charset__to_utf8(fdn_buf *out, const char *scs, const char *text,
	size_t len, const char *vr)
{
	const unsigned char *p = (const unsigned char *)text;
	struct scs cs;
	size_t start;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(text || !len, "text");
	if ((rc = scs_get(&cs, scs)) != 0)
		return rc;
	/* Every initial G0 here is ASCII (ISO-IR 14 is read as ASCII too). */
	if (plain_ascii(p, len))
		return fdn_buf__put(out, text, len);
	start = out->size;
	if (cs.whole == WHOLE_UTF8) {
		rc = dec_utf8(out, p, len);
	} else if (cs.whole) {
		rc = dec_whole(out, whole_conv(cs.whole), p, len);
	} else {
		struct dec d;

		/* Field by field: an initialiser would clear all of cds. */
		d.out = out;
		d.p = p;
		d.len = len;
		d.scs = &cs;
		d.delims = delims_for(vr);
		d.cds.n = 0;
		rc = dec_iso2022(&d);
		cds_release(&d.cds);
	}
	if (rc && out->reserved) {
		out->size = start;
		out->ptr[start] = '\0';
	}
	return rc;
}

/* --- encoding ------------------------------------------------------------- */

struct enc {
	fdn_buf *out;
	const struct scs *scs;
	const char *name; /* the Specific Character Set, for messages */
	unsigned delims;
	unsigned char g0, g1;
	struct cds cds;
};

static int unrepresentable(const char *name, uint32_t cp, size_t at)
{
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
		"U+%04X at byte offset %zu cannot be encoded in Specific "
		"Character Set '%s'", (unsigned)cp, at, name);
}

static int enc_designate(struct enc *e, unsigned char set)
{
	unsigned char *g = sets[set].g == 0 ? &e->g0 : &e->g1;
	int rc;

	if (*g == set)
		return 0;
	if ((rc = fdn_buf__put(e->out, "\x1b", 1)) != 0 ||
	    (rc = fdn_buf__puts(e->out, sets[set].esc)) != 0)
		return rc;
	*g = set;
	return 0;
}

/* Back to the initial designation, as before a delimiter and at the end. */
static int enc_reset(struct enc *e)
{
	int rc;

	if ((rc = enc_designate(e, e->scs->g0)) != 0)
		return rc;
	/* No escape sequence empties G1: the reader forgets it by itself. */
	if (e->scs->g1 == SET_NONE) {
		e->g1 = SET_NONE;
		return 0;
	}
	return enc_designate(e, e->scs->g1);
}

/*
 * The bytes of one character (@p n bytes of UTF-8 at @p u8) in @p set,
 * into @p b; returns their count, 0 when the set lacks the character.
 */
static int enc_char_in(struct enc *e, unsigned char set, const char *u8,
	size_t n, uint32_t cp, unsigned char *b)
{
	const struct set_info *si = &sets[set];
	unsigned char tmp[8];
	char *ip = (char *)u8, *op = (char *)tmp;
	size_t il = n, ol = sizeof(tmp), got;
	iconv_t cd;

	if (si->kind == KIND_KATAKANA && cp >= 0xff61 && cp <= 0xff9f) {
		b[0] = (unsigned char)(0xa1 + (cp - 0xff61));
		return 1;
	}
	if (si->kind == KIND_ASCII || si->kind == KIND_KATAKANA)
		return 0;
	if (cds_get(&e->cds, si->conv, FROM_UTF8, &cd) != 0)
		return -1;
	iconv(cd, NULL, NULL, NULL, NULL);
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1)
		return 0;
	got = sizeof(tmp) - ol;
	if (si->kind == KIND_SBCS) {
		/* Only the upper half: 0x80..0x9F are C1 controls, not G1. */
		if (got != 1 || tmp[0] < 0xa0)
			return 0;
		b[0] = tmp[0];
		return 1;
	}
	if (set == SET_IR159) {
		if (got != 3 || tmp[0] != 0x8f)
			return 0;
		memmove(tmp, tmp + 1, 2);
	} else if (got != 2 || tmp[0] < 0xa1 || tmp[1] < 0xa1) {
		return 0; /* not a 2-byte character: EUC-JP's kana or 0212 */
	}
	/* A set designated to G0 is written in GL. */
	b[0] = si->g == 0 ? tmp[0] & 0x7f : tmp[0];
	b[1] = si->g == 0 ? tmp[1] & 0x7f : tmp[1];
	return 2;
}

/* A non-ASCII character: the current sets first, then those named. */
static int enc_other(struct enc *e, const char *u8, size_t n, uint32_t cp,
	size_t at)
{
	unsigned char cand[SET_COUNT + 2], b[2];
	unsigned nc = 0;
	int got, rc;

	if (e->g1 != SET_NONE)
		cand[nc++] = e->g1;
	if (sets[e->g0].kind == KIND_JIS)
		cand[nc++] = e->g0;
	memcpy(cand + nc, e->scs->set, e->scs->nsets);
	nc += e->scs->nsets;
	for (unsigned i = 0; i < nc; i++) {
		got = enc_char_in(e, cand[i], u8, n, cp, b);
		if (got < 0)
			return fdn_error_last()->code;
		if (got == 0)
			continue;
		/* Leave a 2-byte G0 as soon as it is not needed: some readers
		 * decode each stretch between escapes with one codec. */
		if (sets[cand[i]].g == 1 && sets[e->g0].kind == KIND_JIS &&
		    (rc = enc_designate(e, e->scs->g0)) != 0)
			return rc;
		if ((rc = enc_designate(e, cand[i])) != 0)
			return rc;
		return fdn_buf__put(e->out, b, (size_t)got);
	}
	return unrepresentable(e->name, cp, at);
}

static int enc_ascii(struct enc *e, unsigned char c, size_t at)
{
	int rc = 0;

	if (c == ESC)
		return unrepresentable(e->name, c, at);
	if (is_delim(e->delims, c))
		rc = enc_reset(e);
	else if (sets[e->g0].kind == KIND_JIS)
		rc = enc_designate(e, e->scs->g0);
	return rc ? rc : fdn_buf__put(e->out, &c, 1);
}

static int enc_iso2022(struct enc *e, const unsigned char *p, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;
	int rc = 0;

	e->g0 = e->scs->g0;
	e->g1 = e->scs->g1;
	while (i < len && !rc) {
		/* The caller checked the UTF-8. */
		n = utf8_next(p + i, len - i, &cp);
		if (cp < 0x80)
			rc = enc_ascii(e, p[i], i);
		else
			rc = enc_other(e, (const char *)p + i, n, cp, i);
		i += n;
	}
	return rc ? rc : enc_reset(e);
}

static int enc_whole(fdn_buf *out, const char *name, int conv,
	const unsigned char *p, size_t len)
{
	size_t done;
	uint32_t cp = 0;
	iconv_t cd;
	int rc = conv_take(conv, FROM_UTF8, &cd);

	if (rc)
		return rc;
	rc = iconv_append(out, cd, (const char *)p, len, &done);
	pool_give(conv, FROM_UTF8, cd);
	if (rc == 1) {
		utf8_next(p + done, len - done, &cp);
		return unrepresentable(name, cp, done);
	}
	return rc;
}

int fdn_charset__from_utf8(fdn_buf *out, const char *scs, const char *utf8,
	size_t len, const char *vr)
{
	const unsigned char *p = (const unsigned char *)utf8;
	struct scs cs;
	size_t bad, start;
	bool ascii;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(utf8 || !len, "utf8");
	if ((rc = scs_get(&cs, scs)) != 0)
		return rc;
	if ((bad = utf8_check(p, len, &ascii)) < len)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"not valid UTF-8: byte 0x%02X at offset %zu", p[bad], bad);
	if (cs.whole == WHOLE_UTF8 || (ascii && plain_ascii(p, len)))
		return fdn_buf__put(out, utf8, len);
	start = out->size;
	if (cs.whole) {
		rc = enc_whole(out, scs, whole_conv(cs.whole), p, len);
	} else {
		struct enc e;

		e.out = out;
		e.scs = &cs;
		e.name = scs && *scs ? scs : "ISO_IR 6 (default)";
		e.delims = delims_for(vr);
		e.cds.n = 0;
		rc = enc_iso2022(&e, p, len);
		cds_release(&e.cds);
	}
	if (rc && out->reserved) {
		out->size = start;
		out->ptr[start] = '\0';
	}
	return rc;
}

/* --- capability ----------------------------------------------------------- */

static bool conv_works(int conv)
{
	for (int dir = TO_UTF8; dir <= FROM_UTF8; dir++) {
		iconv_t cd;
		if (conv_take(conv, dir, &cd) != 0)
			return false;
		pool_give(conv, dir, cd);
	}
	return true;
}

bool fdn_charset__supported(const char *scs)
{
	struct scs cs;

	if (scs_get(&cs, scs) != 0)
		return false;
	if (cs.whole == WHOLE_GB18030 || cs.whole == WHOLE_GBK)
		return conv_works(whole_conv(cs.whole));
	for (unsigned i = 0; i < cs.nsets; i++) {
		const struct set_info *si = &sets[cs.set[i]];
		if ((si->kind == KIND_SBCS || si->kind == KIND_JIS ||
		     si->kind == KIND_EUC) && !conv_works(si->conv))
			return false;
	}
	return true;
}
