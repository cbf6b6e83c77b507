/*
 * fdn_dataset_to_json() through the public API: datasets the test builds
 * are turned into the DICOM JSON Model and parsed back with jansson, and
 * the structure and every value are checked.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "fednode/fednode.h"

#define OK(call) assert_int_equal((call), 0)

static int setup(void **state)
{
	(void)state;
	return fdn_init();
}

static int teardown(void **state)
{
	(void)state;
	return fdn_shutdown() < 0;
}

/* --- helpers ---------------------------------------------------------------- */

/* The JSON of @p ds, parsed; the text is left in @p text when not NULL. */
static json_t *to_json(const fdn_dataset *ds, unsigned int flags, fdn_buf *text)
{
	fdn_buf b = FDN_BUF_INIT;
	json_error_t err;
	json_t *root;
	int rc = fdn_dataset_to_json(&b, ds, flags);

	if (rc != 0)
		fail_msg("fdn_dataset_to_json: %s", fdn_error_last()->message);
	assert_non_null(b.ptr);
	assert_int_equal(strlen(b.ptr), b.size);
	root = json_loads(b.ptr, 0, &err);
	if (!root)
		fail_msg("invalid JSON (%s at %d): %s", err.text, err.position, b.ptr);
	assert_true(json_is_object(root));
	if (text)
		*text = b;
	else
		fdn_buf_dispose(&b);
	return root;
}

static json_t *attr(const json_t *obj, const char *key, const char *vr)
{
	json_t *a = json_object_get(obj, key), *v;

	if (!a)
		fail_msg("no attribute %s", key);
	assert_true(json_is_object(a));
	v = json_object_get(a, "vr");
	assert_non_null(v);
	assert_string_equal(json_string_value(v), vr);
	return a;
}

/* Asserts @p key has VR @p vr and @p n values; returns the "Value" array. */
static json_t *values(const json_t *obj, const char *key, const char *vr, size_t n)
{
	json_t *a = attr(obj, key, vr), *v = json_object_get(a, "Value");

	if (!v)
		fail_msg("%s has no Value", key);
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), n);
	assert_int_equal(json_object_size(a), 2);
	return v;
}

/* Asserts @p key has VR @p vr and nothing else: an empty value. */
static void no_value(const json_t *obj, const char *key, const char *vr)
{
	assert_int_equal(json_object_size(attr(obj, key, vr)), 1);
}

static const char *str_at(const json_t *arr, size_t i)
{
	json_t *v = json_array_get(arr, i);

	assert_non_null(v);
	if (!json_is_string(v))
		fail_msg("value %zu is not a string", i);
	return json_string_value(v);
}

static json_int_t int_at(const json_t *arr, size_t i)
{
	json_t *v = json_array_get(arr, i);

	assert_non_null(v);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static double real_at(const json_t *arr, size_t i)
{
	json_t *v = json_array_get(arr, i);

	assert_non_null(v);
	assert_true(json_is_real(v));
	return json_real_value(v);
}

static const char *inline_binary(const json_t *obj, const char *key, const char *vr)
{
	json_t *a = attr(obj, key, vr), *v = json_object_get(a, "InlineBinary");

	if (!v)
		fail_msg("%s has no InlineBinary", key);
	assert_int_equal(json_object_size(a), 2);
	return json_string_value(v);
}

static void put(fdn_dataset *ds, const char *path, const char *value)
{
	if (fdn_dataset_set_string(ds, path, value) != 0)
		fail_msg("set %s: %s", path, fdn_error_last()->message);
}

static void put_bytes(fdn_dataset *ds, const char *path, const char *vr,
	const void *data, size_t size)
{
	if (fdn_dataset_set_bytes(ds, path, vr, data, size) != 0)
		fail_msg("set %s (%s): %s", path, vr, fdn_error_last()->message);
}

static fdn_dataset *new_dataset(void)
{
	fdn_dataset *ds = NULL;

	OK(fdn_dataset_new(&ds, NULL));
	put(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7");
	put(ds, "SOPInstanceUID", "1.2.826.0.1.3680043.2.1125.7.1");
	return ds;
}

/* --- tests -------------------------------------------------------------------- */

static void test_string_vrs(void **state)
{
	fdn_dataset *ds = new_dataset();
	json_t *root, *v;

	(void)state;
	put(ds, "RetrieveAETitle", "STORESCP");                       /* AE */
	put(ds, "PatientAge", "061Y");                                /* AS */
	put(ds, "ImageType", "ORIGINAL\\PRIMARY\\AXIAL");             /* CS */
	put(ds, "StudyDate", "20240131");                             /* DA */
	put(ds, "AcquisitionDateTime", "20240131120000.5+0100");      /* DT */
	put(ds, "InstitutionName", "St. Elsewhere");                  /* LO */
	put(ds, "AdditionalPatientHistory", "a\\b, not two values");  /* LT */
	put(ds, "StationName", "CT01");                               /* SH */
	put(ds, "DerivationDescription", "C:\\path\\stays one");      /* ST */
	put(ds, "StudyTime", "120000.123");                           /* TM */
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1007)", "UC", "x\\y", 3);                /* UC, VM 1-n */
	put(ds, "StrainAdditionalInformation", "u\\t");               /* UT */
	put(ds, "StudyInstanceUID", "1.2.3.4");                       /* UI */
	put(ds, "PixelDataProviderURL", "https://example.org/a\\b");  /* UR */
	put(ds, "ImageComments", "first line\r\nsecond line");        /* LT */
	put(ds, "PatientComments", "");                               /* LT, empty */
	put(ds, "ReferringPhysicianName", "");                        /* PN, empty */
	put(ds, "AccessionNumber", "");                               /* SH, empty */
	put(ds, "PatientOrientation", "A\\\\F");                      /* CS, empty 2nd */
	put(ds, "FrameIncrementPointer", "00181063\\00280009");       /* AT */
	root = to_json(ds, 0, NULL);

	assert_string_equal(str_at(values(root, "00080054", "AE", 1), 0), "STORESCP");
	assert_string_equal(str_at(values(root, "00101010", "AS", 1), 0), "061Y");
	v = values(root, "00080008", "CS", 3);
	assert_string_equal(str_at(v, 0), "ORIGINAL");
	assert_string_equal(str_at(v, 2), "AXIAL");
	assert_string_equal(str_at(values(root, "00080020", "DA", 1), 0), "20240131");
	assert_string_equal(str_at(values(root, "0008002A", "DT", 1), 0), "20240131120000.5+0100");
	assert_string_equal(str_at(values(root, "00080080", "LO", 1), 0), "St. Elsewhere");
	/* LT, ST, UT and UR have VM 1: a backslash is text (UT below). */
	assert_string_equal(str_at(values(root, "001021B0", "LT", 1), 0), "a\\b, not two values");
	assert_string_equal(str_at(values(root, "00082111", "ST", 1), 0), "C:\\path\\stays one");
	assert_string_equal(str_at(values(root, "00287FE0", "UR", 1), 0), "https://example.org/a\\b");
	assert_string_equal(str_at(values(root, "00081010", "SH", 1), 0), "CT01");
	assert_string_equal(str_at(values(root, "00080030", "TM", 1), 0), "120000.123");
	v = values(root, "00291007", "UC", 2);
	assert_string_equal(str_at(v, 1), "y");
	assert_string_equal(str_at(values(root, "00100218", "UT", 1), 0), "u\\t");
	assert_string_equal(str_at(values(root, "0020000D", "UI", 1), 0), "1.2.3.4");
	assert_string_equal(str_at(values(root, "00204000", "LT", 1), 0), "first line\r\nsecond line");
	/* Empty values: "vr" only (PS3.18 F.2.5); an empty one among several: null. */
	no_value(root, "00104000", "LT");
	no_value(root, "00080090", "PN");
	no_value(root, "00080050", "SH");
	v = values(root, "00200020", "CS", 3);
	assert_string_equal(str_at(v, 0), "A");
	assert_true(json_is_null(json_array_get(v, 1)));
	assert_string_equal(str_at(v, 2), "F");
	v = values(root, "00280009", "AT", 2);
	assert_string_equal(str_at(v, 0), "00181063");
	assert_string_equal(str_at(v, 1), "00280009");
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_ut_and_long_text(void **state)
{
	fdn_dataset *ds = new_dataset();
	char big[3000];
	json_t *root;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[100] = '\\';
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1005)", "UT", big, strlen(big));
	root = to_json(ds, 0, NULL);
	assert_string_equal(str_at(values(root, "00291005", "UT", 1), 0), big);
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_integer_vrs(void **state)
{
	fdn_dataset *ds = new_dataset();
	static const int16_t ss[3] = { -32768, 0, 32767 };
	static const uint32_t ul[2] = { 0, 4294967295u };
	static const int32_t sl[2] = { INT32_MIN, INT32_MAX };
	json_t *root, *v;

	(void)state;
	put(ds, "Rows", "512");                                     /* US */
	put(ds, "ReferencedFrameNumber", "1\\2\\3");                /* IS, VM 3 */
	put(ds, "InstanceNumber", "-12");                           /* IS */
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1001)", "SS", ss, sizeof(ss));
	put_bytes(ds, "(0029,1002)", "UL", ul, sizeof(ul));
	put_bytes(ds, "(0029,1003)", "SL", sl, sizeof(sl));
	/* IS text no integer holds, and text that is not an integer at all. */
	put_bytes(ds, "(0029,1004)", "IS", "99999999999999999999\\+7 ", 24);
	put_bytes(ds, "(0029,1006)", "IS", "12a", 3);
	root = to_json(ds, 0, NULL);

	assert_int_equal(int_at(values(root, "00280010", "US", 1), 0), 512);
	v = values(root, "00081160", "IS", 3);
	assert_int_equal(int_at(v, 0), 1);
	assert_int_equal(int_at(v, 2), 3);
	assert_int_equal(int_at(values(root, "00200013", "IS", 1), 0), -12);
	v = values(root, "00291001", "SS", 3);
	assert_int_equal(int_at(v, 0), -32768);
	assert_int_equal(int_at(v, 2), 32767);
	v = values(root, "00291002", "UL", 2);
	assert_int_equal(int_at(v, 1), 4294967295LL);
	v = values(root, "00291003", "SL", 2);
	assert_int_equal(int_at(v, 0), INT32_MIN);
	assert_int_equal(int_at(v, 1), INT32_MAX);
	/* Kept as text rather than lost: PS3.18 F.2.3 allows IS as a string. */
	v = values(root, "00291004", "IS", 2);
	assert_string_equal(str_at(v, 0), "99999999999999999999");
	assert_int_equal(int_at(v, 1), 7);
	assert_string_equal(str_at(values(root, "00291006", "IS", 1), 0), "12a");
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_64bit_vrs(void **state)
{
	fdn_dataset *ds = new_dataset();
	static const uint64_t uv[4] = { 0, 9007199254740991ull, 9007199254740992ull, UINT64_MAX };
	static const int64_t sv[4] = { -9007199254740991ll, -9007199254740992ll, INT64_MIN, 42 };
	json_t *root, *v;

	(void)state;
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1010)", "UV", uv, sizeof(uv));
	put_bytes(ds, "(0029,1011)", "SV", sv, sizeof(sv));
	root = to_json(ds, 0, NULL);
	/* Numbers within +-(2^53 - 1), exact in any JSON reader; text beyond. */
	v = values(root, "00291010", "UV", 4);
	assert_int_equal(int_at(v, 0), 0);
	assert_int_equal(int_at(v, 1), 9007199254740991LL);
	assert_string_equal(str_at(v, 2), "9007199254740992");
	assert_string_equal(str_at(v, 3), "18446744073709551615");
	v = values(root, "00291011", "SV", 4);
	assert_int_equal(int_at(v, 0), -9007199254740991LL);
	assert_string_equal(str_at(v, 1), "-9007199254740992");
	assert_string_equal(str_at(v, 2), "-9223372036854775808");
	assert_int_equal(int_at(v, 3), 42);
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_decimal_vrs(void **state)
{
	fdn_dataset *ds = new_dataset();
	static const float fl[3] = { 1.5f, -2.25f, 0.1f };
	double fd[3] = { 0.1 + 0.2, -1e-300, 12345.678 };
	json_t *root, *v;
	fdn_buf text = FDN_BUF_INIT;

	(void)state;
	put(ds, "PixelSpacing", "0.5\\0.625");
	put(ds, "SliceThickness", "0.6");
	put(ds, "RescaleIntercept", "-1024");
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	/* A DS a double cannot hold, a malformed one, and accepted syntaxes. */
	put_bytes(ds, "(0029,1020)", "DS", "1e400\\abc\\.5\\5.\\-1E-2\\0x10", 26);
	put_bytes(ds, "(0029,1021)", "FL", fl, sizeof(fl));
	root = to_json(ds, 0, &text);

	v = values(root, "00280030", "DS", 2);
	assert_true(real_at(v, 0) == 0.5);
	assert_true(real_at(v, 1) == 0.625);
	assert_true(real_at(values(root, "00180050", "DS", 1), 0) == 0.6);
	assert_true(real_at(values(root, "00281052", "DS", 1), 0) == -1024.0);
	v = values(root, "00291020", "DS", 6);
	assert_string_equal(str_at(v, 0), "1e400");
	assert_string_equal(str_at(v, 1), "abc");
	assert_true(real_at(v, 2) == 0.5);
	assert_true(real_at(v, 3) == 5.0);
	assert_true(real_at(v, 4) == -0.01);
	assert_string_equal(str_at(v, 5), "0x10");
	/* FL as the shortest decimal that is the same float. */
	v = values(root, "00291021", "FL", 3);
	assert_true(real_at(v, 0) == 1.5);
	assert_true(real_at(v, 1) == -2.25);
	assert_true((float)real_at(v, 2) == 0.1f);
	assert_true(real_at(v, 2) == 0.1);
	/* Short decimals stay short when no value needs more digits. */
	assert_non_null(strstr(text.ptr, "[0.6]"));
	assert_non_null(strstr(text.ptr, ",0.1]"));
	assert_null(strstr(text.ptr, "0000000"));
	json_delete(root);
	fdn_buf_dispose(&text);

	/* One FD that needs 17 digits: every value is still exact. */
	put_bytes(ds, "(0029,1022)", "FD", fd, sizeof(fd));
	root = to_json(ds, 0, NULL);
	v = values(root, "00291022", "FD", 3);
	assert_true(real_at(v, 0) == 0.1 + 0.2);
	assert_true(real_at(v, 1) == -1e-300);
	assert_true(real_at(v, 2) == 12345.678);
	assert_true(real_at(values(root, "00180050", "DS", 1), 0) == 0.6);
	assert_true((float)real_at(values(root, "00291021", "FL", 3), 2) == 0.1f);
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_special_floats(void **state)
{
	fdn_dataset *ds = new_dataset();
	double fd[3] = { NAN, INFINITY, -INFINITY };
	float fl[2] = { -INFINITY, 3.0f };
	json_t *root, *v;

	(void)state;
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1030)", "FD", fd, sizeof(fd));
	put_bytes(ds, "(0029,1031)", "FL", fl, sizeof(fl));
	root = to_json(ds, 0, NULL);
	v = values(root, "00291030", "FD", 3);
	assert_string_equal(str_at(v, 0), "NaN");
	assert_string_equal(str_at(v, 1), "Infinity");
	assert_string_equal(str_at(v, 2), "-Infinity");
	v = values(root, "00291031", "FL", 2);
	assert_string_equal(str_at(v, 0), "-Infinity");
	assert_true(real_at(v, 1) == 3.0);
	json_delete(root);
	fdn_dataset_free(ds);
}

static void check_pn(const json_t *name, const char *alpha, const char *ideo,
	const char *phon)
{
	const char *want[3] = { alpha, ideo, phon };
	const char *keys[3] = { "Alphabetic", "Ideographic", "Phonetic" };
	size_t i, n = 0;

	assert_true(json_is_object(name));
	for (i = 0; i < 3; i++) {
		json_t *g = json_object_get(name, keys[i]);
		if (!want[i]) {
			assert_null(g);
			continue;
		}
		assert_non_null(g);
		assert_string_equal(json_string_value(g), want[i]);
		n++;
	}
	assert_int_equal(json_object_size(name), n);
}

static void test_person_names(void **state)
{
	fdn_dataset *ds = new_dataset();
	json_t *root, *v;

	(void)state;
	put(ds, "SpecificCharacterSet", "ISO_IR 192");
	put(ds, "PatientName", "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e"
		"=\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
	put(ds, "ReferringPhysicianName", "M\xc3\xbcller^Hans^^Dr.");
	/* Several names; an empty one; one with only an ideographic group. */
	put(ds, "NameOfPhysiciansReadingStudy", "Doe^John\\\\=\xe5\xb1\xb1\xe7\x94\xb0\\Roe^Jane==r");
	root = to_json(ds, 0, NULL);

	assert_string_equal(str_at(values(root, "00080005", "CS", 1), 0), "ISO_IR 192");
	v = values(root, "00100010", "PN", 1);
	check_pn(json_array_get(v, 0), "Yamada^Tarou",
		"\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e",
		"\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
	check_pn(json_array_get(values(root, "00080090", "PN", 1), 0), "M\xc3\xbcller^Hans^^Dr.",
		NULL, NULL);
	v = values(root, "00081060", "PN", 4);
	check_pn(json_array_get(v, 0), "Doe^John", NULL, NULL);
	assert_true(json_is_null(json_array_get(v, 1)));
	check_pn(json_array_get(v, 2), NULL, "\xe5\xb1\xb1\xe7\x94\xb0", NULL);
	check_pn(json_array_get(v, 3), "Roe^Jane", NULL, "r");
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_sequences(void **state)
{
	fdn_dataset *ds = new_dataset();
	json_t *root, *items, *item, *inner;

	(void)state;
	put(ds, "ReferencedImageSequence[0]/ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2");
	put(ds, "ReferencedImageSequence[0]/ReferencedSOPInstanceUID", "1.2.3.100");
	put(ds, "ReferencedImageSequence[1]/ReferencedSOPInstanceUID", "1.2.3.101");
	put(ds, "ReferencedImageSequence[1]/ReferencedFrameNumber", "1\\2");
	put(ds, "SourceImageSequence[0]/PurposeOfReferenceCodeSequence[0]/CodeValue", "121320");
	put(ds, "SourceImageSequence[0]/PurposeOfReferenceCodeSequence[0]/CodingSchemeDesignator",
		"DCM");
	put(ds, "SourceImageSequence[0]/PurposeOfReferenceCodeSequence[1]/CodeValue", "121321");
	put(ds, "SourceImageSequence[0]/ReferencedSOPInstanceUID", "1.2.3.200");
	/* An item left empty, and a sequence left without items. */
	put(ds, "DerivationCodeSequence[0]/CodeValue", "113072");
	put(ds, "DerivationCodeSequence[1]/CodeValue", "113073");
	OK(fdn_dataset_remove(ds, "DerivationCodeSequence[1]/CodeValue"));
	put(ds, "AnatomicRegionSequence[0]/CodeValue", "T-D3000");
	OK(fdn_dataset_remove(ds, "AnatomicRegionSequence[0]"));
	root = to_json(ds, 0, NULL);

	items = values(root, "00081140", "SQ", 2);
	item = json_array_get(items, 0);
	assert_int_equal(json_object_size(item), 2);
	assert_string_equal(str_at(values(item, "00081150", "UI", 1), 0), "1.2.840.10008.5.1.4.1.1.2");
	assert_string_equal(str_at(values(item, "00081155", "UI", 1), 0), "1.2.3.100");
	item = json_array_get(items, 1);
	assert_int_equal(json_object_size(item), 2);
	assert_int_equal(int_at(values(item, "00081160", "IS", 2), 1), 2);

	items = values(root, "00082112", "SQ", 1);
	item = json_array_get(items, 0);
	assert_string_equal(str_at(values(item, "00081155", "UI", 1), 0), "1.2.3.200");
	inner = values(item, "0040A170", "SQ", 2);
	assert_string_equal(str_at(values(json_array_get(inner, 0), "00080100", "SH", 1), 0), "121320");
	assert_string_equal(str_at(values(json_array_get(inner, 0), "00080102", "SH", 1), 0), "DCM");
	assert_int_equal(json_object_size(json_array_get(inner, 1)), 1);
	assert_string_equal(str_at(values(json_array_get(inner, 1), "00080100", "SH", 1), 0), "121321");

	items = values(root, "00089215", "SQ", 2);
	assert_int_equal(json_object_size(json_array_get(items, 0)), 1);
	assert_true(json_is_object(json_array_get(items, 1)));
	assert_int_equal(json_object_size(json_array_get(items, 1)), 0);
	no_value(root, "00082218", "SQ");
	json_delete(root);
	fdn_dataset_free(ds);
}

static const unsigned char ob5[5] = { 1, 2, 3, 4, 5 };

static void test_binary_vrs(void **state)
{
	fdn_dataset *ds = new_dataset();
	static const uint16_t ow[3] = { 0x0100, 0x0302, 0xFFFF };
	static const float of[1] = { 1.0f };
	static const double od[1] = { -2.0 };
	static const uint32_t ol[1] = { 0x04030201u };
	static const uint64_t ov[1] = { 0x0807060504030201ull };
	json_t *root;

	(void)state;
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1040)", "OB", ob5, sizeof(ob5));
	put_bytes(ds, "(0029,1041)", "OW", ow, sizeof(ow));
	put_bytes(ds, "(0029,1042)", "OF", of, sizeof(of));
	put_bytes(ds, "(0029,1043)", "OD", od, sizeof(od));
	put_bytes(ds, "(0029,1044)", "OL", ol, sizeof(ol));
	put_bytes(ds, "(0029,1045)", "OV", ov, sizeof(ov));
	put_bytes(ds, "(0029,1046)", "UN", "\x00\xff\x10", 3);
	put_bytes(ds, "(0029,1047)", "OB", "", 0);
	put_bytes(ds, "PixelData", "OW", ow, sizeof(ow));
	root = to_json(ds, 0, NULL);

	/* Odd lengths are padded to even by the library (PS3.5 7.1.1). */
	assert_string_equal(inline_binary(root, "00291040", "OB"), "AQIDBAUA");
	assert_string_equal(inline_binary(root, "00291041", "OW"), "AAECA///");
	assert_string_equal(inline_binary(root, "00291042", "OF"), "AACAPw==");
	assert_string_equal(inline_binary(root, "00291043", "OD"), "AAAAAAAAAMA=");
	assert_string_equal(inline_binary(root, "00291044", "OL"), "AQIDBA==");
	assert_string_equal(inline_binary(root, "00291045", "OV"), "AQIDBAUGBwg=");
	assert_string_equal(inline_binary(root, "00291046", "UN"), "AP8QAA==");
	no_value(root, "00291047", "OB");
	assert_string_equal(inline_binary(root, "7FE00010", "OW"), "AAECA///");
	json_delete(root);

	/* SKIP_BINARY: the attributes stay, with "vr" only. */
	root = to_json(ds, FDN_JSON_SKIP_BINARY, NULL);
	no_value(root, "00291040", "OB");
	no_value(root, "00291046", "UN");
	no_value(root, "7FE00010", "OW");
	assert_string_equal(str_at(values(root, "00290010", "LO", 1), 0), "FEDNODE TEST");
	json_delete(root);
	fdn_dataset_free(ds);
}

static void test_binary_in_sequence_skipped(void **state)
{
	fdn_dataset *ds = new_dataset();
	json_t *root, *item;

	(void)state;
	put(ds, "IconImageSequence[0]/Rows", "1");
	put_bytes(ds, "IconImageSequence[0]/PixelData", "OB", ob5, 4);
	root = to_json(ds, FDN_JSON_SKIP_BINARY, NULL);
	item = json_array_get(values(root, "00880200", "SQ", 1), 0);
	no_value(item, "7FE00010", "OB");
	assert_int_equal(int_at(values(item, "00280010", "US", 1), 0), 1);
	json_delete(root);
	root = to_json(ds, 0, NULL);
	item = json_array_get(values(root, "00880200", "SQ", 1), 0);
	assert_string_equal(inline_binary(item, "7FE00010", "OB"), "AQIDBA==");
	json_delete(root);
	fdn_dataset_free(ds);
}

static void check_keys_ascending(json_t *obj)
{
	char prev[9] = "";
	void *it;

	for (it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
		const char *key = json_object_iter_key(it);
		json_t *a = json_object_get(obj, key), *items = json_object_get(a, "Value");
		size_t i;

		assert_int_equal(strlen(key), 8);
		assert_int_equal(strspn(key, "0123456789ABCDEF"), 8);
		assert_true(strcmp(prev, key) < 0);
		memcpy(prev, key, sizeof(prev));
		if (strcmp(json_string_value(json_object_get(a, "vr")), "SQ") == 0 && items)
			for (i = 0; i < json_array_size(items); i++)
				check_keys_ascending(json_array_get(items, i));
	}
}

static void test_key_order_and_private(void **state)
{
	fdn_dataset *ds = new_dataset();
	fdn_buf text = FDN_BUF_INIT;
	json_t *root;
	const char *a, *b, *c;

	(void)state;
	/* Set out of order on purpose; lower-case hex in the private block. */
	put(ds, "PatientName", "Doe^John");
	put_bytes(ds, "(0029,10ab)", "LO", "later", 5);
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1001)", "SH", "first", 5);
	put(ds, "Modality", "CT");
	put(ds, "SourceImageSequence[0]/ReferencedSOPInstanceUID", "1.2.3");
	put(ds, "SourceImageSequence[0]/ReferencedSOPClassUID", "1.2");
	put_bytes(ds, "(0011,0010)", "LO", "OTHER", 5);
	put_bytes(ds, "(0011,1000)", "DS", "2.5", 3);
	root = to_json(ds, 0, &text);
	check_keys_ascending(root);
	assert_string_equal(str_at(values(root, "002910AB", "LO", 1), 0), "later");
	assert_string_equal(str_at(values(root, "00291001", "SH", 1), 0), "first");
	assert_true(real_at(values(root, "00111000", "DS", 1), 0) == 2.5);
	/* In the text itself too, not only in the parsed object. */
	a = strstr(text.ptr, "\"00080016\"");
	b = strstr(text.ptr, "\"00100010\"");
	c = strstr(text.ptr, "\"002910AB\"");
	assert_true(a && b && c && a < b && b < c);
	json_delete(root);
	fdn_buf_dispose(&text);
	fdn_dataset_free(ds);
}

/* Group lengths, which the library does not let a host set, come from
 * files: one is spliced into a written file before (0020,000D). */
static void test_group_length_left_out(void **state)
{
	fdn_dataset *ds = new_dataset(), *back = NULL;
	static const unsigned char group_length[12] = {
		0x20, 0x00, 0x00, 0x00, 'U', 'L', 4, 0, 0, 0, 0, 0
	};
	fdn_buf file = FDN_BUF_INIT;
	unsigned char *spliced;
	size_t at;
	json_t *root;

	(void)state;
	put(ds, "StudyInstanceUID", "1.2.3.4");
	OK(fdn_dataset_write_buffer(&file, ds, 0));
	for (at = 132; at + 6 <= file.size; at++)
		if (!memcmp(file.ptr + at, "\x20\x00\x0d\x00UI", 6))
			break;
	assert_true(at + 6 <= file.size);
	spliced = malloc(file.size + sizeof(group_length));
	assert_non_null(spliced);
	memcpy(spliced, file.ptr, at);
	memcpy(spliced + at, group_length, sizeof(group_length));
	memcpy(spliced + at + sizeof(group_length), file.ptr + at, file.size - at);
	OK(fdn_dataset_read_buffer(&back, spliced, file.size + sizeof(group_length), 0));
	free(spliced);
	assert_int_equal(fdn_dataset_contains(back, "(0020,0000)"), 1);
	root = to_json(back, 0, NULL);
	assert_null(json_object_get(root, "00200000"));
	assert_string_equal(str_at(values(root, "0020000D", "UI", 1), 0), "1.2.3.4");
	json_delete(root);
	fdn_buf_dispose(&file);
	fdn_dataset_free(back);
	fdn_dataset_free(ds);
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_pretty_and_compact(void **state)
{
	fdn_dataset *ds = new_dataset();
	fdn_buf compact = FDN_BUF_INIT, pretty = FDN_BUF_INIT;
	json_t *a, *b;

	(void)state;
	put(ds, "PatientName", "Doe^John");
	put(ds, "ImageType", "ORIGINAL\\PRIMARY");
	put(ds, "ReferencedImageSequence[0]/ReferencedSOPInstanceUID", "1.2.3");
	a = to_json(ds, 0, &compact);
	b = to_json(ds, FDN_JSON_PRETTY, &pretty);
	assert_true(json_equal(a, b));
	assert_null(strchr(compact.ptr, '\n'));
	assert_null(strchr(compact.ptr, ' '));
	assert_true(starts_with(compact.ptr, "{\"00080008\":{\"vr\":\"CS\",\"Value\":[\"ORIGINAL\","));
	assert_true(starts_with(pretty.ptr, "{\n  \"00080008\": {\n    \"vr\": \"CS\",\n"));
	/* Two spaces per level: root, attribute, "Value", item. */
	assert_non_null(strstr(pretty.ptr, "\n      {\n        \"00081155\": {\n"));
	assert_true(pretty.size > compact.size);
	json_delete(a);
	json_delete(b);
	fdn_buf_dispose(&compact);
	fdn_buf_dispose(&pretty);
	fdn_dataset_free(ds);
}

static void test_empty_dataset(void **state)
{
	fdn_dataset *ds = NULL;
	fdn_buf out = FDN_BUF_INIT;

	(void)state;
	OK(fdn_dataset_new(&ds, NULL));
	OK(fdn_dataset_to_json(&out, ds, 0));
	assert_string_equal(out.ptr, "{}");
	OK(fdn_dataset_to_json(&out, ds, FDN_JSON_PRETTY));
	assert_string_equal(out.ptr, "{}");
	fdn_buf_dispose(&out);
	fdn_dataset_free(ds);
}

static void test_errors(void **state)
{
	fdn_dataset *ds = new_dataset();
	fdn_buf out = FDN_BUF_INIT;

	(void)state;
	assert_int_equal(fdn_dataset_to_json(NULL, ds, 0), FDN_EINVALID);
	assert_int_equal(fdn_dataset_to_json(&out, NULL, 0), FDN_EINVALID);
	assert_int_equal(fdn_dataset_to_json(&out, ds, 0x100), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "flags"));

	/* Text that is not valid in its character set: the error of the
	 * value propagates, and the buffer, filled before, is left empty. */
	OK(fdn_dataset_to_json(&out, ds, 0));
	assert_true(out.size > 0);
	put(ds, "SpecificCharacterSet", "ISO_IR 192");
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1050)", "LO", "bad \xff\xfe", 6);
	assert_int_equal(fdn_dataset_to_json(&out, ds, 0), FDN_EFORMAT);
	assert_int_equal(out.size, 0);
	assert_true(out.ptr == NULL || out.ptr[0] == '\0');
	fdn_buf_dispose(&out);
	fdn_dataset_free(ds);
}

/* Written and read back, the dataset gives the same JSON: in every
 * uncompressed transfer syntax.  InlineBinary is little endian whatever
 * the transfer syntax: a big-endian file gives the same base64. */
static void roundtrip(const char *ts)
{
	fdn_dataset *ds = NULL, *back = NULL;
	static const uint16_t ow[4] = { 0x0102, 0x0304, 0xA0B0, 0xFFFE };
	static const float fl[2] = { 1.5f, 0.1f };
	fdn_buf file = FDN_BUF_INIT;
	json_t *a, *b;

	OK(fdn_dataset_new(&ds, ts));
	put(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7");
	put(ds, "SOPInstanceUID", "1.2.826.0.1.3680043.2.1125.7.2");
	put(ds, "SpecificCharacterSet", "ISO_IR 192");
	put(ds, "PatientName", "M\xc3\xbcller^Hans=\xe5\xb1\xb1\xe7\x94\xb0");
	put(ds, "Rows", "2");
	put(ds, "Columns", "2");
	put(ds, "PixelSpacing", "0.5\\0.5");
	put(ds, "FrameIncrementPointer", "00181063");
	put(ds, "SourceImageSequence[0]/PurposeOfReferenceCodeSequence[0]/CodeValue", "121320");
	put_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12);
	put_bytes(ds, "(0029,1001)", "FL", fl, sizeof(fl));
	put_bytes(ds, "PixelData", "OW", ow, sizeof(ow));
	OK(fdn_dataset_write_buffer(&file, ds, 0));
	OK(fdn_dataset_read_buffer(&back, file.ptr, file.size, FDN_READ_FULL));
	a = to_json(ds, 0, NULL);
	b = to_json(back, 0, NULL);
	assert_string_equal(inline_binary(b, "7FE00010", "OW"), "AgEEA7Cg/v8=");
	assert_true(json_equal(a, b));
	json_delete(a);
	json_delete(b);
	fdn_buf_dispose(&file);
	fdn_dataset_free(ds);
	fdn_dataset_free(back);
}

static void test_roundtrip_explicit_le(void **state)
{
	(void)state;
	roundtrip("1.2.840.10008.1.2.1");
}

static void test_roundtrip_explicit_be(void **state)
{
	(void)state;
	roundtrip("1.2.840.10008.1.2.2");
}

static void test_roundtrip_deflated(void **state)
{
	(void)state;
	roundtrip("1.2.840.10008.1.2.1.99");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string_vrs),
		cmocka_unit_test(test_ut_and_long_text),
		cmocka_unit_test(test_integer_vrs),
		cmocka_unit_test(test_64bit_vrs),
		cmocka_unit_test(test_decimal_vrs),
		cmocka_unit_test(test_special_floats),
		cmocka_unit_test(test_person_names),
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_binary_vrs),
		cmocka_unit_test(test_binary_in_sequence_skipped),
		cmocka_unit_test(test_key_order_and_private),
		cmocka_unit_test(test_group_length_left_out),
		cmocka_unit_test(test_pretty_and_compact),
		cmocka_unit_test(test_empty_dataset),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_roundtrip_explicit_le),
		cmocka_unit_test(test_roundtrip_explicit_be),
		cmocka_unit_test(test_roundtrip_deflated),
	};

	return cmocka_run_group_tests_name("dicom_json", tests, setup, teardown);
}
