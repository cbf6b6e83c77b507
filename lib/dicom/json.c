/*
 * fdn_dataset_to_json(): the DICOM JSON Model (PS3.18 F.2), built with
 * jansson on top of the public dataset API only.
 *
 * Forms chosen where the model leaves room (PS3.18 F.2.3, F.2.5):
 *  - An empty value (length 0) gives an attribute with "vr" only; an
 *    empty value among several gives null in "Value".  An empty sequence
 *    gives "vr" only, an empty item {}.
 *  - DS and IS are JSON numbers.  A value that is not a valid decimal or
 *    integer string, or that a double (DS) or int64 (IS) cannot hold
 *    ("1e400"), is kept as the JSON string of its text, which the model
 *    allows so that nothing is lost.
 *  - SV and UV are JSON numbers within +-(2^53 - 1), where every JSON
 *    reader is exact, and decimal strings beyond.
 *  - FL values are written as the shortest decimal that reads back as the
 *    same float; FL and FD NaN and infinities, which JSON numbers cannot
 *    express, are the strings "NaN", "Infinity" and "-Infinity".
 *  - LT, ST, UT and UR are single-valued (PS3.5 6.4): a backslash in them
 *    is text, not a separator.
 *  - InlineBinary holds the value bytes as fdn_dataset_get_bytes() gives
 *    them: little endian also for a big-endian file, whose words GDCM
 *    swaps on reading.  Binary values of undefined length (encapsulated
 *    Pixel Data), whose fragment structure that function does not give,
 *    and every binary value under FDN_JSON_SKIP_BINARY, give "vr" only.
 *  - Group lengths (gggg,0000) are left out, as the model requires.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "fednode/dicom.h"
#include "../core/core_private.h"

/* How the values of a VR go into JSON. */
enum value_form {
	FORM_STRING, FORM_DS, FORM_IS, FORM_INT, FORM_INT64, FORM_FL, FORM_FD,
	FORM_PN, FORM_SQ, FORM_BINARY
};

struct vr_form {
	char vr[3];
	unsigned char form;  /* enum value_form */
	unsigned char multi; /* '\\' separates values */
};

static const struct vr_form vr_forms[] = {
	{ "AE", FORM_STRING, 1 }, { "AS", FORM_STRING, 1 }, { "AT", FORM_STRING, 1 },
	{ "CS", FORM_STRING, 1 }, { "DA", FORM_STRING, 1 }, { "DS", FORM_DS, 1 },
	{ "DT", FORM_STRING, 1 }, { "FD", FORM_FD, 1 }, { "FL", FORM_FL, 1 },
	{ "IS", FORM_IS, 1 }, { "LO", FORM_STRING, 1 }, { "LT", FORM_STRING, 0 },
	{ "OB", FORM_BINARY, 0 }, { "OD", FORM_BINARY, 0 }, { "OF", FORM_BINARY, 0 },
	{ "OL", FORM_BINARY, 0 }, { "OV", FORM_BINARY, 0 }, { "OW", FORM_BINARY, 0 },
	{ "PN", FORM_PN, 1 }, { "SH", FORM_STRING, 1 }, { "SL", FORM_INT, 1 },
	{ "SQ", FORM_SQ, 0 }, { "SS", FORM_INT, 1 }, { "ST", FORM_STRING, 0 },
	{ "SV", FORM_INT64, 1 }, { "TM", FORM_STRING, 1 }, { "UC", FORM_STRING, 1 },
	{ "UI", FORM_STRING, 1 }, { "UL", FORM_INT, 1 }, { "UN", FORM_BINARY, 0 },
	{ "UR", FORM_STRING, 0 }, { "US", FORM_INT, 1 }, { "UT", FORM_STRING, 0 },
	{ "UV", FORM_INT64, 1 },
};

/* Beyond this, a JSON number may not read back exactly (IEEE double). */
#define MAX_SAFE_INTEGER 9007199254740991.0

/* Longest number text parsed; longer text is not a valid DS/IS anyway. */
#define NUMBER_TEXT_MAX 64

struct json_state {
	const fdn_dataset *ds;
	unsigned int flags;
	int digits;     /* significant digits every real in the document needs */
	fdn_buf text;   /* scratch for values */
};

/* One dataset or item being filled: the callback payload of foreach. */
struct json_level {
	struct json_state *st;
	json_t *obj;
};

static const struct vr_form *form_of(const char *vr)
{
	size_t i;

	for (i = 0; i < sizeof(vr_forms) / sizeof(vr_forms[0]); i++)
		if (!strcmp(vr_forms[i].vr, vr))
			return &vr_forms[i];
	return NULL;
}

static int nomem(json_t *j)
{
	return j ? 0 : fdn__error_oom();
}

/* jansson refuses text that is not UTF-8 and fails on memory alike;
 * trying again unchecked tells the two apart. */
static int new_string(json_t **out, const char *s, size_t n, const char *path)
{
	json_t *probe;

	if ((*out = json_stringn(s, n)) != NULL)
		return 0;
	if (!(probe = json_stringn_nocheck(s, n)))
		return fdn__error_oom();
	json_decref(probe);
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"'%s': value is not valid UTF-8", path);
}

/* --- numbers ------------------------------------------------------------- */

/* Fewest significant digits with which %g reads back as exactly @p v.
 * Never fewer than the integral digits below 1e17: %g would switch to an
 * exponent, and 100 reads better than 1e2. */
static int shortest_digits(double v)
{
	double a = fabs(v);
	char s[40];
	int p = 1;

	for (; a >= 10 && a < 1e17; a /= 10)
		p++;
	for (; p < 17; p++) {
		snprintf(s, sizeof(s), "%.*g", p, v);
		if (strtod(s, NULL) == v)
			return p;
	}
	return 17;
}

/* jansson prints every real of a document with one precision, 17 digits
 * by default, which turns DS "0.1" into 0.10000000000000001.  Using the
 * largest precision any real of the document needs keeps all of them
 * exact and the common short decimals short. */
static int new_real(json_t **out, double v, struct json_state *st)
{
	int p = shortest_digits(v);

	if (p > st->digits)
		st->digits = p;
	*out = json_real(v);
	return nomem(*out);
}

static int new_special_float(json_t **out, double v)
{
	*out = json_string(isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
	return nomem(*out);
}

/* Copies a value out of the joined text so that strto* can read it;
 * false when it is too long to be a number. */
static int number_text(char *dst, const char *s, size_t n)
{
	if (n >= NUMBER_TEXT_MAX)
		return 0;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 1;
}

static size_t skip_digits(const char *s, size_t i)
{
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* PS3.5 DS syntax: [+-]digits[.digits][(e|E)[+-]digits].  strtod alone
 * would also take hex floats, "inf" and "nan". */
static int is_decimal_string(const char *s)
{
	size_t start = s[0] == '+' || s[0] == '-', i = skip_digits(s, start);
	size_t digits = i - start;

	if (s[i] == '.') {
		start = i + 1;
		i = skip_digits(s, start);
		digits += i - start;
	}
	if (digits == 0)
		return 0;
	if (s[i] == 'e' || s[i] == 'E') {
		size_t e = i + 1 + (s[i + 1] == '+' || s[i + 1] == '-');
		i = skip_digits(s, e);
		if (i == e)
			return 0;
	}
	return s[i] == '\0';
}

static int is_integer_string(const char *s)
{
	size_t start = s[0] == '+' || s[0] == '-', i = skip_digits(s, start);

	return i > start && s[i] == '\0';
}

static int decimal_string_value(json_t **out, const char *s, size_t n, struct json_level *lv,
	const char *path)
{
	char t[NUMBER_TEXT_MAX];
	double v;

	if (number_text(t, s, n) && is_decimal_string(t)) {
		errno = 0;
		v = strtod(t, NULL);
		if (errno == 0 && isfinite(v))
			return new_real(out, v, lv->st);
	}
	return new_string(out, s, n, path);
}

static int integer_string_value(json_t **out, const char *s, size_t n, const char *path)
{
	char t[NUMBER_TEXT_MAX];
	long long v;

	if (number_text(t, s, n) && is_integer_string(t)) {
		errno = 0;
		v = strtoll(t, NULL, 10);
		if (errno == 0) {
			*out = json_integer(v);
			return nomem(*out);
		}
	}
	return new_string(out, s, n, path);
}

/* US, SS, UL, SL, SV, UV: the library formats them as decimal text. */
static int int_value(json_t **out, const char *s, size_t n, int form, const char *path)
{
	char t[NUMBER_TEXT_MAX];
	long long v;
	unsigned long long u;

	if (!number_text(t, s, n))
		return new_string(out, s, n, path);
	if (t[0] == '-') {
		v = strtoll(t, NULL, 10);
		if (form == FORM_INT64 && (double)v < -MAX_SAFE_INTEGER)
			return new_string(out, s, n, path);
	} else {
		u = strtoull(t, NULL, 10);
		if (u > (unsigned long long)MAX_SAFE_INTEGER)
			return new_string(out, s, n, path);
		v = (long long)u;
	}
	*out = json_integer(v);
	return nomem(*out);
}

/* The shortest decimal that reads back as the same float: FL 0.1 is
 * written 0.1, not as the double 0.10000000149011612. */
static double float_as_short_double(float f)
{
	char s[40];
	int p;

	for (p = 1; p < 9; p++) {
		snprintf(s, sizeof(s), "%.*g", p, (double)f);
		if (strtof(s, NULL) == f)
			return strtod(s, NULL);
	}
	return (double)f;
}

static int float_value(json_t **out, const char *s, size_t n, int form,
	struct json_level *lv, const char *path)
{
	char t[NUMBER_TEXT_MAX];
	double v;

	if (!number_text(t, s, n))
		return new_string(out, s, n, path);
	v = form == FORM_FL ? (double)strtof(t, NULL) : strtod(t, NULL);
	if (!isfinite(v))
		return new_special_float(out, v);
	if (form == FORM_FL)
		v = float_as_short_double((float)v);
	return new_real(out, v, lv->st);
}

/* --- person names --------------------------------------------------------- */

/* "Alphabetic=Ideographic=Phonetic": only the groups that are not empty.
 * Any further '=' stays in the phonetic group rather than being lost. */
static int pn_value(json_t **out, const char *s, size_t n, const char *path)
{
	static const char *const names[] = { "Alphabetic", "Ideographic", "Phonetic" };
	size_t g, start = 0, end;
	json_t *obj = json_object(), *str;
	int rc = nomem(obj);

	for (g = 0; rc == 0 && g < 3 && start <= n; g++, start = end + 1) {
		end = start;
		while (end < n && (s[end] != '=' || g == 2))
			end++;
		if (end == start)
			continue;
		if ((rc = new_string(&str, s + start, end - start, path)) == 0 &&
		    json_object_set_new(obj, names[g], str) != 0)
			rc = fdn__error_oom();
	}
	if (rc != 0) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

/* --- values ------------------------------------------------------------------- */

static int one_value(json_t **out, const char *s, size_t n, const struct vr_form *f,
	struct json_level *lv, const char *path)
{
	if (n == 0) {
		*out = json_null();
		return 0;
	}
	switch (f->form) {
	case FORM_DS:
		return decimal_string_value(out, s, n, lv, path);
	case FORM_IS:
		return integer_string_value(out, s, n, path);
	case FORM_INT:
	case FORM_INT64:
		return int_value(out, s, n, f->form, path);
	case FORM_FL:
	case FORM_FD:
		return float_value(out, s, n, f->form, lv, path);
	case FORM_PN:
		return pn_value(out, s, n, path);
	default:
		return new_string(out, s, n, path);
	}
}

/* "Value": the text of the element split into its values. */
static int text_values(json_t *attr, const struct vr_form *f, struct json_level *lv,
	const char *path)
{
	fdn_buf *text = &lv->st->text;
	json_t *arr, *v;
	size_t start = 0, end;
	int rc = fdn_dataset_get_string(text, lv->st->ds, path);

	if (rc != 0 || text->size == 0)
		return rc;
	if (!(arr = json_array()))
		return fdn__error_oom();
	for (; rc == 0 && start <= text->size; start = end + 1) {
		end = start;
		while (end < text->size && (text->ptr[end] != '\\' || !f->multi))
			end++;
		rc = one_value(&v, text->ptr + start, end - start, f, lv, path);
		if (rc == 0 && json_array_append_new(arr, v) != 0)
			rc = fdn__error_oom();
	}
	if (rc == 0 && json_object_set_new(attr, "Value", arr) != 0)
		return fdn__error_oom();
	if (rc != 0)
		json_decref(arr);
	return rc;
}

static int binary_value(json_t *attr, const fdn_element_info *e, struct json_level *lv,
	const char *path)
{
	fdn_buf *bytes = &lv->st->text;
	const int variant = sodium_base64_VARIANT_ORIGINAL;
	size_t len;
	char *b64;
	json_t *s;
	int rc;

	if ((lv->st->flags & FDN_JSON_SKIP_BINARY) || e->length == 0xFFFFFFFFu)
		return 0;
	if ((rc = fdn_dataset_get_bytes(bytes, lv->st->ds, path)) != 0 || bytes->size == 0)
		return rc;
	if (bytes->size > (SIZE_MAX / 4 - 1) * 3)
		return fdn__error_oom();
	len = sodium_base64_ENCODED_LEN(bytes->size, variant);
	if (!(b64 = fdn__malloc(len)))
		return fdn__error_oom();
	sodium_bin2base64(b64, len, (const unsigned char *)bytes->ptr, bytes->size, variant);
	s = json_stringn_nocheck(b64, len - 1);
	fdn__free(b64);
	if (!s || json_object_set_new(attr, "InlineBinary", s) != 0)
		return fdn__error_oom();
	return 0;
}

static int add_element(const fdn_element_info *e, void *payload);

/* "Value": one object per item, each filled by its own iteration. */
static int sequence_value(json_t *attr, const fdn_element_info *e, struct json_level *lv,
	const char *path)
{
	struct json_level item = { lv->st, NULL };
	size_t i, n = strlen(path) + 32;
	char *item_path;
	json_t *arr;
	int rc = 0;

	if (e->vm == 0)
		return 0;
	if (!(arr = json_array()) || json_object_set_new(attr, "Value", arr) != 0)
		return fdn__error_oom();
	if (!(item_path = fdn__malloc(n)))
		return fdn__error_oom();
	for (i = 0; rc == 0 && i < e->vm; i++) {
		snprintf(item_path, n, "%s[%zu]", path, i);
		if (!(item.obj = json_object()) || json_array_append_new(arr, item.obj) != 0)
			rc = fdn__error_oom();
		else
			rc = fdn_dataset_foreach(lv->st->ds, item_path, 0, add_element, &item);
	}
	fdn__free(item_path);
	return rc;
}

static int fill_attribute(json_t *attr, const fdn_element_info *e, struct json_level *lv,
	const char *path)
{
	const struct vr_form *f = form_of(e->vr);

	if (!f || f->form == FORM_BINARY)
		return binary_value(attr, e, lv, path);
	if (f->form == FORM_SQ)
		return sequence_value(attr, e, lv, path);
	return text_values(attr, f, lv, path);
}

static int add_element(const fdn_element_info *e, void *payload)
{
	struct json_level *lv = payload;
	json_t *attr;
	char key[9];
	char *path;
	int rc;

	if ((e->tag & 0xFFFFu) == 0)
		return 0;
	snprintf(key, sizeof(key), "%08X", (unsigned)e->tag);
	if (!(attr = json_object()))
		return fdn__error_oom();
	/* json_object_set_new() consumes the value even when it fails. */
	if (json_object_set_new(attr, "vr", json_string(e->vr)) != 0) {
		json_decref(attr);
		return fdn__error_oom();
	}
	if (json_object_set_new(lv->obj, key, attr) != 0)
		return fdn__error_oom();
	/* The path is lent only until the next call on the dataset. */
	if (!(path = fdn__strdup(e->path)))
		return fdn__error_oom();
	rc = fill_attribute(attr, e, lv, path);
	fdn__free(path);
	return rc;
}

static int dump_to_buf(const char *data, size_t size, void *payload)
{
	return fdn_buf__put(payload, data, size) == 0 ? 0 : -1;
}

int fdn_dataset_to_json(fdn_buf *out, const fdn_dataset *ds, unsigned int flags)
{
	struct json_state st = { ds, flags, 1, FDN_BUF_INIT };
	struct json_level top = { &st, NULL };
	size_t dump_flags;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(!(flags & ~(unsigned)(FDN_JSON_PRETTY | FDN_JSON_SKIP_BINARY)), "flags");
	fdn_buf__clear(out);
	if (!(top.obj = json_object()))
		return fdn__error_oom();
	rc = fdn_dataset_foreach(ds, NULL, 0, add_element, &top);
	fdn_buf_dispose(&st.text);
	if (rc == 0) {
		dump_flags = JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(st.digits) |
			((flags & FDN_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT);
		if (json_dump_callback(top.obj, dump_to_buf, out, dump_flags) != 0)
			rc = fdn__error_oom();
	}
	json_decref(top.obj);
	if (rc != 0)
		fdn_buf__clear(out);
	return rc;
}
