/*
 * DICOM datasets through the public API: datasets the test builds, writes
 * and reads back in every uncompressed transfer syntax; paths, values,
 * iteration, modification, atomic writes and the error cases.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <cmocka.h>

#include "testutil.h"

#include "fednode/fednode.h"


static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	if (fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "dicom") != 0)
		return -1;
	return fdn_init();
}

static int teardown(void **state)
{
	(void)state;
	if (fdn_test_rmtree(tmpdir) != 0)
		return -1;
	return fdn_shutdown() < 0;
}

static char *str(const fdn_dataset *ds, const char *path)
{
	static fdn_buf b = FDN_BUF_INIT;
	int rc = fdn_dataset_get_string(&b, ds, path);

	if (rc != 0) {
		fprintf(stderr, "get_string(%s): %s\n", path, fdn_error_last()->message);
		return NULL;
	}
	return b.ptr ? b.ptr : (char *)"";
}

static const uint16_t pixels[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 65535 };

/* A CT-like dataset with one element of most VRs, nested sequences, a
 * private block and Pixel Data. */
static fdn_dataset *make_dataset(const char *ts)
{
	fdn_dataset *ds = NULL;
	static const float fl[2] = { 1.5f, -2.25f };
	static const unsigned char priv[5] = { 1, 2, 3, 4, 5 };

	OK(fdn_dataset_new(&ds, ts));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"));
	OK(fdn_dataset_set_string(ds, "SOPInstanceUID", "1.2.826.0.1.3680043.2.1125.1.1"));
	OK(fdn_dataset_set_string(ds, "StudyInstanceUID", "1.2.826.0.1.3680043.2.1125.1.2"));
	OK(fdn_dataset_set_string(ds, "SeriesInstanceUID", "1.2.826.0.1.3680043.2.1125.1.3"));
	OK(fdn_dataset_set_string(ds, "PatientName", "Doe^John^^Dr"));
	OK(fdn_dataset_set_string(ds, "PatientID", "PID-0042"));
	OK(fdn_dataset_set_string(ds, "PatientSex", "M"));
	OK(fdn_dataset_set_string(ds, "PatientAge", "061Y"));
	OK(fdn_dataset_set_string(ds, "StudyDate", "20240131"));
	OK(fdn_dataset_set_string(ds, "StudyDescription", "CT THORAX"));
	OK(fdn_dataset_set_string(ds, "SeriesDescription", "Lung 1mm"));
	OK(fdn_dataset_set_string(ds, "Modality", "CT"));
	OK(fdn_dataset_set_string(ds, "BodyPartExamined", "CHEST"));
	OK(fdn_dataset_set_string(ds, "Manufacturer", "ACME Medical"));
	OK(fdn_dataset_set_string(ds, "SeriesNumber", "7"));
	OK(fdn_dataset_set_string(ds, "InstanceNumber", "12"));
	OK(fdn_dataset_set_string(ds, "ImageType", "ORIGINAL\\PRIMARY\\AXIAL"));
	OK(fdn_dataset_set_string(ds, "PixelSpacing", "0.5\\0.625"));
	OK(fdn_dataset_set_string(ds, "SliceThickness", "1.25"));
	OK(fdn_dataset_set_string(ds, "BurnedInAnnotation", "NO"));
	OK(fdn_dataset_set_string(ds, "ImageComments", "first line\r\nsecond line"));
	OK(fdn_dataset_set_string(ds, "Rows", "4"));
	OK(fdn_dataset_set_string(ds, "Columns", "4"));
	OK(fdn_dataset_set_string(ds, "BitsAllocated", "16"));
	OK(fdn_dataset_set_string(ds, "PixelRepresentation", "0"));
	OK(fdn_dataset_set_string(ds, "SmallestImagePixelValue", "0"));
	OK(fdn_dataset_set_string(ds, "RescaleIntercept", "-1024"));
	OK(fdn_dataset_set_string(ds, "ReferencedFrameNumber", "1\\2\\3")); /* IS, VM 3 */
	OK(fdn_dataset_set_string(ds, "FrameIncrementPointer", "00181063")); /* AT */
	OK(fdn_dataset_set_string(ds,
		"ReferencedImageSequence[0]/ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2"));
	OK(fdn_dataset_set_string(ds,
		"ReferencedImageSequence[0]/ReferencedSOPInstanceUID", "1.2.3.100"));
	OK(fdn_dataset_set_string(ds,
		"ReferencedImageSequence[1]/ReferencedSOPInstanceUID", "1.2.3.101"));
	/* Two levels deep. */
	OK(fdn_dataset_set_string(ds,
		"SourceImageSequence[0]/PurposeOfReferenceCodeSequence[0]/CodeValue", "121320"));
	OK(fdn_dataset_set_string(ds,
		"SourceImageSequence[0]/PurposeOfReferenceCodeSequence[0]/CodingSchemeDesignator", "DCM"));
	/* A private block: creator and one element, bytes with explicit VRs. */
	OK(fdn_dataset_set_bytes(ds, "(0029,0010)", "LO", "FEDNODE TEST", 12));
	OK(fdn_dataset_set_bytes(ds, "(0029,1001)", "OB", priv, sizeof(priv)));
	OK(fdn_dataset_set_bytes(ds, "(0029,1002)", "FL", fl, sizeof(fl)));
	OK(fdn_dataset_set_bytes(ds, "PixelData", "OW", pixels, sizeof(pixels)));
	return ds;
}

static void check_dataset(const fdn_dataset *ds, int with_pixels)
{
	int implicit = strcmp(fdn_dataset_transfer_syntax(ds), "1.2.840.10008.1.2") == 0;
	fdn_buf b = FDN_BUF_INIT;
	double d;
	int64_t i;

	assert_string_equal(str(ds, "PatientName"), "Doe^John^^Dr");
	assert_string_equal(str(ds, "(0010,0020)"), "PID-0042");
	assert_string_equal(str(ds, "00100040"), "M");
	assert_string_equal(str(ds, "ImageType"), "ORIGINAL\\PRIMARY\\AXIAL");
	assert_string_equal(str(ds, "ImageComments"), "first line\r\nsecond line");
	assert_string_equal(str(ds, "Rows"), "4");
	assert_string_equal(str(ds, "RescaleIntercept"), "-1024");
	assert_string_equal(str(ds, "FrameIncrementPointer"), "00181063");
	assert_string_equal(str(ds, "ReferencedImageSequence[1]/ReferencedSOPInstanceUID"), "1.2.3.101");
	assert_string_equal(str(ds,
		"SourceImageSequence[0]/PurposeOfReferenceCodeSequence[0]/CodeValue"), "121320");
	assert_string_equal(str(ds, "(0029,0010)"), "FEDNODE TEST");
	{
		fdn_element_info e;

		e.version = FDN_ELEMENT_INFO_VERSION;
		OK(fdn_dataset_get_element(&e, ds, "(0029,1002)"));
		if (strcmp(e.vr, "UN") == 0) {
			/* Read from implicit VR: a private element's VR is
			 * unknowable, so it is UN and read as bytes. */
			assert_true(implicit);
			assert_int_equal(fdn_dataset_get_string(&b, ds, "(0029,1002)"), FDN_EINVALID);
			OK(fdn_dataset_get_bytes(&b, ds, "(0029,1002)"));
			assert_int_equal(b.size, 8);
		} else {
			assert_string_equal(str(ds, "(0029,1002)"), "1.5\\-2.25");
		}
	}

	OK(fdn_dataset_get_number(&d, ds, "PixelSpacing", 1));
	assert_true(d == 0.625);
	OK(fdn_dataset_get_int(&i, ds, "ReferencedFrameNumber", 2));
	assert_int_equal(i, 3);
	assert_int_equal(fdn_dataset_get_int(&i, ds, "ReferencedFrameNumber", 3), FDN_ENOTFOUND);
	OK(fdn_dataset_get_int(&i, ds, "Columns", 0));
	assert_int_equal(i, 4);
	assert_int_equal(fdn_dataset_get_int(&i, ds, "PixelSpacing", 0), FDN_EINVALID);
	assert_int_equal(fdn_dataset_get_number(&d, ds, "PatientName", 0), FDN_EINVALID);

	OK(fdn_dataset_get_bytes(&b, ds, "(0029,1001)"));
	assert_int_equal(b.size, 6); /* padded to even length */
	assert_memory_equal(b.ptr, "\1\2\3\4\5\0", 6);
	if (with_pixels) {
		OK(fdn_dataset_get_bytes(&b, ds, "PixelData"));
		assert_int_equal(b.size, sizeof(pixels));
		assert_memory_equal(b.ptr, pixels, sizeof(pixels));
	} else {
		assert_int_equal(fdn_dataset_contains(ds, "PixelData"), 0);
	}
	fdn_buf_dispose(&b);
}

static void test_dictionary(void **state)
{
	uint32_t tag = 0;

	(void)state;
	OK(fdn_tag_from_keyword(&tag, "PatientName"));
	assert_int_equal(tag, FDN_TAG(0x0010, 0x0010));
	assert_string_equal(fdn_tag_keyword(FDN_TAG(0x0020, 0x000D)), "StudyInstanceUID");
	assert_string_equal(fdn_tag_vr(FDN_TAG(0x0028, 0x0010)), "US");
	assert_string_equal(fdn_tag_vr(FDN_TAG(0x7FE0, 0x0010)), "OW");
	assert_null(fdn_tag_keyword(FDN_TAG(0x0029, 0x1001)));
	assert_null(fdn_tag_vr(FDN_TAG(0x0029, 0x1001)));
	assert_int_equal(fdn_tag_from_keyword(&tag, "NoSuchKeyword"), FDN_ENOTFOUND);
	assert_non_null(strstr(fdn_error_last()->message, "NoSuchKeyword"));
}

static void roundtrip(const char *ts)
{
	fdn_dataset *ds = make_dataset(ts), *back = NULL, *head = NULL;
	fdn_buf out = FDN_BUF_INIT;
	char *copy;

	check_dataset(ds, 1);
	OK(fdn_dataset_write_buffer(&out, ds, 0));
	assert_true(out.size > 132);
	assert_memory_equal(out.ptr + 128, "DICM", 4);
	/* Zero copy: the library must not keep a reference to the buffer. */
	copy = malloc(out.size);
	memcpy(copy, out.ptr, out.size);
	OK(fdn_dataset_read_buffer(&back, copy, out.size, FDN_READ_FULL));
	memset(copy, 0xAA, out.size);
	free(copy);
	assert_string_equal(fdn_dataset_transfer_syntax(back), ts);
	assert_int_equal(fdn_dataset_is_header_only(back), 0);
	check_dataset(back, 1);

	OK(fdn_dataset_read_buffer(&head, out.ptr, out.size, FDN_READ_HEADER_ONLY));
	assert_int_equal(fdn_dataset_is_header_only(head), 1);
	check_dataset(head, 0);
	assert_int_equal(fdn_dataset_write_buffer(&out, head, 0), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "header-only"));

	fdn_buf_dispose(&out);
	fdn_dataset_free(ds);
	fdn_dataset_free(back);
	fdn_dataset_free(head);
}

static void test_roundtrip_explicit_le(void **state)
{
	(void)state;
	roundtrip("1.2.840.10008.1.2.1");
}

static void test_roundtrip_implicit_le(void **state)
{
	(void)state;
	roundtrip("1.2.840.10008.1.2");
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

static void test_instance_info(void **state)
{
	fdn_dataset *ds = make_dataset(NULL);
	fdn_instance_info info;
	fdn_buf out = FDN_BUF_INIT;

	(void)state;
	memset(&info, 0xFF, sizeof(info));
	info.version = FDN_INSTANCE_INFO_VERSION;
	OK(fdn_dataset_write_buffer(&out, ds, 0));
	fdn_dataset_free(ds);
	OK(fdn_dataset_read_buffer(&ds, out.ptr, out.size, FDN_READ_HEADER_ONLY));
	OK(fdn_dataset_instance_info(&info, ds));
	assert_string_equal(info.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
	assert_string_equal(info.sop_instance_uid, "1.2.826.0.1.3680043.2.1125.1.1");
	assert_string_equal(info.study_instance_uid, "1.2.826.0.1.3680043.2.1125.1.2");
	assert_string_equal(info.series_instance_uid, "1.2.826.0.1.3680043.2.1125.1.3");
	assert_string_equal(info.transfer_syntax_uid, "1.2.840.10008.1.2.1");
	assert_string_equal(info.modality, "CT");
	assert_string_equal(info.patient_id, "PID-0042");
	assert_string_equal(info.patient_name, "Doe^John^^Dr");
	assert_string_equal(info.patient_sex, "M");
	assert_string_equal(info.patient_age, "061Y");
	assert_string_equal(info.study_date, "20240131");
	assert_string_equal(info.study_description, "CT THORAX");
	assert_string_equal(info.series_description, "Lung 1mm");
	assert_string_equal(info.body_part_examined, "CHEST");
	assert_string_equal(info.manufacturer, "ACME Medical");
	assert_int_equal(info.series_number, 7);
	assert_int_equal(info.instance_number, 12);
	assert_int_equal(info.rows, 4);
	assert_int_equal(info.columns, 4);
	assert_int_equal(info.frames, 1);
	assert_int_equal(info.burned_in_annotation, FDN_NO);
	assert_int_equal(info.recognizable_visual_features, FDN_UNKNOWN);
	assert_int_equal(info.file_size, out.size);

	/* Absent values: "" and the documented defaults. */
	OK(fdn_dataset_remove(ds, "SeriesNumber"));
	OK(fdn_dataset_remove(ds, "Manufacturer"));
	OK(fdn_dataset_instance_info(&info, ds));
	assert_int_equal(info.series_number, -1);
	assert_string_equal(info.manufacturer, "");

	info.version = FDN_INSTANCE_INFO_VERSION + 1;
	assert_int_equal(fdn_dataset_instance_info(&info, ds), FDN_EINVALID);
	fdn_buf_dispose(&out);
	fdn_dataset_free(ds);
}

/* A summary read keeps exactly what fdn_instance_info reports. */
static void test_summary_read(void **state)
{
	fdn_dataset *ds = make_dataset(NULL), *full = NULL, *sum = NULL;
	fdn_instance_info a, b;
	fdn_buf out = FDN_BUF_INIT;

	(void)state;
	OK(fdn_dataset_write_buffer(&out, ds, 0));
	OK(fdn_dataset_read_buffer(&full, out.ptr, out.size, FDN_READ_FULL));
	OK(fdn_dataset_read_buffer(&sum, out.ptr, out.size, FDN_READ_SUMMARY));
	assert_int_equal(fdn_dataset_is_header_only(sum), 1);
	a.version = b.version = FDN_INSTANCE_INFO_VERSION;
	OK(fdn_dataset_instance_info(&a, full));
	OK(fdn_dataset_instance_info(&b, sum));
	assert_string_equal(a.sop_instance_uid, b.sop_instance_uid);
	assert_string_equal(a.patient_name, b.patient_name);
	assert_string_equal(a.study_date, b.study_date);
	assert_string_equal(a.manufacturer, b.manufacturer);
	assert_string_equal(a.body_part_examined, b.body_part_examined);
	assert_int_equal(a.rows, b.rows);
	assert_int_equal(a.series_number, b.series_number);
	assert_int_equal(a.burned_in_annotation, b.burned_in_annotation);
	assert_int_equal(a.file_size, b.file_size);
	/* Everything else was skipped. */
	assert_int_equal(fdn_dataset_contains(sum, "ImageType"), 0);
	assert_int_equal(fdn_dataset_contains(sum, "ReferencedImageSequence"), 0);
	assert_int_equal(fdn_dataset_contains(sum, "PixelData"), 0);
	assert_int_equal(fdn_dataset_write_buffer(&out, sum, 0), FDN_EINVALID);
	fdn_buf_dispose(&out);
	fdn_dataset_free(ds);
	fdn_dataset_free(full);
	fdn_dataset_free(sum);
}

static void test_paths(void **state)
{
	fdn_dataset *ds = make_dataset(NULL);
	fdn_buf b = FDN_BUF_INIT;

	(void)state;
	assert_int_equal(fdn_dataset_contains(ds, "PatientName"), 1);
	assert_int_equal(fdn_dataset_contains(ds, "PatientBirthDate"), 0);
	assert_int_equal(fdn_dataset_contains(ds, "ReferencedImageSequence[1]"), 1);
	assert_int_equal(fdn_dataset_contains(ds, "ReferencedImageSequence[2]"), 0);
	assert_int_equal(fdn_dataset_contains(ds, "NotAKeyword"), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "NotAKeyword"));
	assert_int_equal(fdn_dataset_contains(ds, "ReferencedImageSequence/ReferencedSOPInstanceUID"),
		FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "[0]"));
	assert_int_equal(fdn_dataset_contains(ds, "ReferencedImageSequence[x]"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_contains(ds, ""), FDN_EINVALID);
	assert_int_equal(fdn_dataset_get_string(&b, ds, "PatientName[0]/PatientID"), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "not a sequence"));
	assert_int_equal(fdn_dataset_get_string(&b, ds, "ReferencedImageSequence[5]/ReferencedSOPInstanceUID"),
		FDN_ENOTFOUND);
	assert_non_null(strstr(fdn_error_last()->message, "2 items"));
	assert_int_equal(fdn_dataset_get_string(&b, ds, "PixelData"), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "fdn_dataset_get_bytes"));
	assert_int_equal(fdn_dataset_get_string(&b, ds, "ReferencedImageSequence"), FDN_EINVALID);
	fdn_buf_dispose(&b);
	fdn_dataset_free(ds);
}

struct walk {
	int count, sequences, deepest, stop_after;
	char last_path[256];
};

static int on_element(const fdn_element_info *e, void *payload)
{
	struct walk *w = payload;

	w->count++;
	w->sequences += strcmp(e->vr, "SQ") == 0;
	if ((int)e->depth > w->deepest)
		w->deepest = (int)e->depth;
	snprintf(w->last_path, sizeof(w->last_path), "%s", e->path);
	if (e->tag == FDN_TAG(0x0008, 0x1140)) {
		assert_int_equal(e->vm, 2);
		assert_string_equal(e->keyword, "ReferencedImageSequence");
	}
	if (e->tag == FDN_TAG(0x0008, 0x0008))
		assert_int_equal(e->vm, 3);
	return w->stop_after && w->count == w->stop_after ? 77 : 0;
}

static void test_foreach(void **state)
{
	fdn_dataset *ds = make_dataset(NULL);
	struct walk flat = { 0 }, deep = { 0 }, item = { 0 }, stop = { 0 };
	fdn_element_info e;

	(void)state;
	OK(fdn_dataset_foreach(ds, NULL, 0, on_element, &flat));
	OK(fdn_dataset_foreach(ds, "", FDN_FOREACH_RECURSIVE, on_element, &deep));
	assert_int_equal(flat.sequences, 2);
	assert_int_equal(flat.deepest, 0);
	/* 2 + 1 + 2 nested values and one nested sequence */
	assert_int_equal(deep.count, flat.count + 6);
	assert_int_equal(deep.deepest, 2);
	assert_string_equal(deep.last_path, "(7FE0,0010)");

	OK(fdn_dataset_foreach(ds, "SourceImageSequence[0]", FDN_FOREACH_RECURSIVE, on_element, &item));
	assert_int_equal(item.count, 3);
	assert_string_equal(item.last_path,
		"SourceImageSequence[0]/(0040,A170)[0]/(0008,0102)");

	stop.stop_after = 3;
	assert_int_equal(fdn_dataset_foreach(ds, NULL, 0, on_element, &stop), 77);
	assert_int_equal(stop.count, 3);
	assert_int_equal(fdn_error_last()->klass, FDN_ERRCLASS_CALLBACK);
	assert_int_equal(fdn_dataset_foreach(ds, "PatientName", 0, on_element, &stop), FDN_EINVALID);

	e.version = FDN_ELEMENT_INFO_VERSION;
	OK(fdn_dataset_get_element(&e, ds, "PixelSpacing"));
	assert_string_equal(e.vr, "DS");
	assert_int_equal(e.vm, 2);
	assert_int_equal(e.length, 10);
	assert_string_equal(e.path, "PixelSpacing");
	OK(fdn_dataset_get_element(&e, ds, "(0029,1001)"));
	assert_string_equal(e.vr, "OB");
	assert_null(e.keyword);
	fdn_dataset_free(ds);
}

static void test_set_errors(void **state)
{
	fdn_dataset *ds = make_dataset(NULL);

	(void)state;
	assert_int_equal(fdn_dataset_set_string(ds, "(0002,0010)", "1.2.840.10008.1.2"), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "File Meta"));
	assert_int_equal(fdn_dataset_set_string(ds, "(0029,1003)", "x"), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "fdn_dataset_set_bytes"));
	assert_int_equal(fdn_dataset_set_string(ds, "Rows", "70000"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "Rows", "-1"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "Rows", "12x"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "SOPInstanceUID", "1.2.abc"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "StudyDate", "2024-01-31"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "SliceThickness", "thick"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "PixelData", "1"), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_bytes(ds, "(0029,1004)", "XX", "ab", 2), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_bytes(ds, "(0029,1004)", "US", "abc", 3), FDN_EINVALID);
	assert_int_equal(fdn_dataset_set_string(ds, "ReferencedImageSequence[3]/ReferencedSOPInstanceUID",
		"1.2"), FDN_ENOTFOUND);
	/* Nothing of the failed calls changed the value. */
	assert_string_equal(str(ds, "Rows"), "4");
	fdn_dataset_free(ds);
}

static void test_remove_and_clone(void **state)
{
	fdn_dataset *ds = make_dataset(NULL), *c = NULL;

	(void)state;
	OK(fdn_dataset_clone(&c, ds));
	OK(fdn_dataset_set_string(c, "ReferencedImageSequence[0]/ReferencedSOPInstanceUID", "9.9"));
	OK(fdn_dataset_remove(c, "ReferencedImageSequence[1]"));
	OK(fdn_dataset_remove(c, "PatientName"));
	/* The original is untouched by changes to the clone, nested ones included. */
	assert_string_equal(str(ds, "ReferencedImageSequence[0]/ReferencedSOPInstanceUID"), "1.2.3.100");
	assert_int_equal(fdn_dataset_contains(ds, "ReferencedImageSequence[1]"), 1);
	assert_string_equal(str(ds, "PatientName"), "Doe^John^^Dr");
	assert_string_equal(str(c, "ReferencedImageSequence[0]/ReferencedSOPInstanceUID"), "9.9");
	assert_int_equal(fdn_dataset_contains(c, "ReferencedImageSequence[1]"), 0);
	assert_int_equal(fdn_dataset_contains(c, "PatientName"), 0);
	assert_int_equal(fdn_dataset_remove(c, "PatientName"), FDN_ENOTFOUND);
	assert_int_equal(fdn_dataset_remove(c, "ReferencedImageSequence[4]"), FDN_ENOTFOUND);
	fdn_dataset_free(ds);
	fdn_dataset_free(c);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_write_file_atomic(void **state)
{
	fdn_dataset *ds = make_dataset(NULL), *back = NULL;
	char path[512], missing[512];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/out.dcm", tmpdir);
	snprintf(missing, sizeof(missing), "%s/no/such/dir/out.dcm", tmpdir);
	OK(fdn_dataset_write_file(ds, path, 0));
	OK(fdn_dataset_read_file(&back, path, FDN_READ_FULL));
	assert_string_equal(fdn_dataset_source(back), path);
	check_dataset(back, 1);
	fdn_dataset_free(back);
	/* Overwrite in place; nothing but the file is left in the folder. */
	OK(fdn_dataset_set_string(ds, "PatientID", "NEW"));
	OK(fdn_dataset_write_file(ds, path, 0));
	OK(fdn_dataset_read_file(&back, path, FDN_READ_HEADER_ONLY));
	assert_string_equal(str(back, "PatientID"), "NEW");
	assert_int_equal(count_entries(tmpdir), 1);
	OK(stat(path, &st));
	assert_true((st.st_mode & 0644) == 0644 || (st.st_mode & 0600) == 0600);
	/* A header-only dataset is refused and the file stays as it was. */
	assert_int_equal(fdn_dataset_write_file(back, path, 0), FDN_EINVALID);
	assert_int_equal(count_entries(tmpdir), 1);
	assert_int_equal(fdn_dataset_write_file(ds, missing, 0), FDN_ENOTFOUND);
	assert_int_equal(count_entries(tmpdir), 1);
	/* Without the SOP UIDs there is no valid File Meta. */
	OK(fdn_dataset_remove(ds, "SOPInstanceUID"));
	assert_int_equal(fdn_dataset_write_file(ds, path, 0), FDN_EINVALID);
	assert_int_equal(count_entries(tmpdir), 1);
	fdn_dataset_free(back);
	fdn_dataset_free(ds);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void test_read_errors(void **state)
{
	fdn_dataset *ds = NULL, *good = make_dataset(NULL);
	fdn_buf out = FDN_BUF_INIT;
	char path[512];
	unsigned char big[1024];
	const char *msg;

	(void)state;
	assert_int_equal(fdn_dataset_read_file(&ds, "/nonexistent/x.dcm", 0), FDN_ENOTFOUND);
	assert_null(ds);
	assert_int_equal(fdn_dataset_read_file(&ds, tmpdir, 0), FDN_EINVALID);
	assert_int_equal(fdn_dataset_read_file(&ds, "/dev/null", 0), FDN_EINVALID);
	assert_int_equal(fdn_dataset_read_file(&ds, path, 0x80), FDN_EINVALID);

	snprintf(path, sizeof(path), "%s/empty.dcm", tmpdir);
	write_bytes(path, "", 0);
	assert_int_equal(fdn_dataset_read_file(&ds, path, 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "not a DICOM file"));
	assert_non_null(strstr(fdn_error_last()->message, path));

	snprintf(path, sizeof(path), "%s/text.txt", tmpdir);
	write_bytes(path, "hello, this is not DICOM at all\n", 32);
	assert_int_equal(fdn_dataset_read_file(&ds, path, 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "not a DICOM file"));

	/* A valid file cut short: refused, naming file and offset. */
	OK(fdn_dataset_write_buffer(&out, good, 0));
	snprintf(path, sizeof(path), "%s/cut.dcm", tmpdir);
	write_bytes(path, out.ptr, out.size - 7);
	assert_int_equal(fdn_dataset_read_file(&ds, path, FDN_READ_FULL), FDN_EFORMAT);
	msg = fdn_error_last()->message;
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "offset"));
	assert_int_equal(fdn_dataset_read_buffer(&ds, out.ptr, out.size - 7, 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "buffer"));

	/* A 4 GB length field in a 1 KB file: refused before any allocation. */
	memset(big, 0, sizeof(big));
	memcpy(big + 128, "DICM", 4);
	memcpy(big + 132, "\x02\x00\x10\x00UI\x14\x00" "1.2.840.10008.1.2.1\0", 28);
	memcpy(big + 160, "\x10\x00\x10\x00PN\x00\x00", 8);
	memcpy(big + 160, "\x10\x00\x10\x00OB\x00\x00\xfe\xff\xff\xff", 12);
	assert_int_equal(fdn_dataset_read_buffer(&ds, big, sizeof(big), 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "offset 160"));
	snprintf(path, sizeof(path), "%s/huge-length.dcm", tmpdir);
	write_bytes(path, big, sizeof(big));
	assert_int_equal(fdn_dataset_read_file(&ds, path, FDN_READ_HEADER_ONLY), FDN_EFORMAT);

	fdn_buf_dispose(&out);
	fdn_dataset_free(good);
	assert_null(ds);
}

/* A dataset whose first element is Pixel Data: a header-only read must
 * not hand GDCM a File Meta group with nothing after it. */
static void test_pixel_data_first(void **state)
{
	unsigned char f[128 + 4 + 28 + 16];
	fdn_dataset *ds = NULL;
	char path[512];
	FILE *fp;

	(void)state;
	memset(f, 0, sizeof(f));
	memcpy(f + 128, "DICM", 4);
	memcpy(f + 132, "\x02\x00\x10\x00UI\x14\x00" "1.2.840.10008.1.2.1\0", 28);
	memcpy(f + 160, "\xe0\x7f\x10\x00OW\x00\x00\x04\x00\x00\x00" "abcd", 16);
	OK(fdn_dataset_read_buffer(&ds, f, sizeof(f), FDN_READ_HEADER_ONLY));
	assert_int_equal(fdn_dataset_contains(ds, "PixelData"), 0);
	fdn_dataset_free(ds);
	snprintf(path, sizeof(path), "%s/pixels-first.dcm", tmpdir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(f, 1, sizeof(f), fp), sizeof(f));
	fclose(fp);
	OK(fdn_dataset_read_file(&ds, path, FDN_READ_HEADER_ONLY));
	assert_int_equal(fdn_dataset_contains(ds, "PixelData"), 0);
	fdn_dataset_free(ds);
	OK(fdn_dataset_read_file(&ds, path, FDN_READ_FULL));
	assert_int_equal(fdn_dataset_contains(ds, "PixelData"), 1);
	fdn_dataset_free(ds);
	unlink(path);
}

static void test_new_rejects_compressed(void **state)
{
	fdn_dataset *ds = NULL;

	(void)state;
	assert_int_equal(fdn_dataset_new(&ds, "1.2.840.10008.1.2.4.50"), FDN_EUNSUPPORTED);
	assert_null(ds);
	OK(fdn_dataset_new(&ds, NULL));
	assert_string_equal(fdn_dataset_transfer_syntax(ds), "1.2.840.10008.1.2.1");
	assert_null(fdn_dataset_source(ds));
	fdn_dataset_free(ds);
	fdn_dataset_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dictionary),
		cmocka_unit_test(test_roundtrip_explicit_le),
		cmocka_unit_test(test_roundtrip_implicit_le),
		cmocka_unit_test(test_roundtrip_explicit_be),
		cmocka_unit_test(test_roundtrip_deflated),
		cmocka_unit_test(test_instance_info),
		cmocka_unit_test(test_summary_read),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_foreach),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_remove_and_clone),
		cmocka_unit_test(test_write_file_atomic),
		cmocka_unit_test(test_read_errors),
		cmocka_unit_test(test_pixel_data_first),
		cmocka_unit_test(test_new_rejects_compressed),
	};

	return cmocka_run_group_tests_name("dicom", tests, setup, teardown);
}
