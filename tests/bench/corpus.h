/*
 * The generated corpus the benchmarks share: realistic single-frame CT
 * files written by the library itself — a header of about a hundred
 * elements (patient, study and series PHI, equipment, CT image and
 * image plane modules, four sequences, a private block) and Pixel Data.
 * Header-only so that each benchmark stays one program; the includer
 * defines BENCH_NAME (the prefix of error messages) first.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_BENCH_CORPUS_H
#define FDN_BENCH_CORPUS_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fednode/fednode.h"

#ifndef BENCH_NAME
#error "define BENCH_NAME before including corpus.h"
#endif

#define UID_ROOT "1.2.826.0.1.3680043.2.1125.88."
/* Set by make_series() and write_instance() besides ct_header: four
 * per-series values, Columns, a private block of three, Pixel Data, four
 * per-file values. */
#define OTHER_ELEMENTS 13

/* Reports the library's last error too, and exits: the benchmarks remove
 * their temporary files with atexit(). */
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, BENCH_NAME ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (%s)\n", fdn_error_last()->message);
	va_end(ap);
	exit(1);
}

typedef struct element {
	const char *path, *value;
} element;

/* A realistic CT header: patient, study, series, equipment, frame of
 * reference, CT image, image plane and pixel modules, SOP common, a few
 * sequences.  The per-file values (UIDs, numbers, position) come later. */
static const element ct_header[] = {
	{ "SpecificCharacterSet", "ISO_IR 100" },
	{ "ImageType", "ORIGINAL\\PRIMARY\\AXIAL" },
	{ "InstanceCreationDate", "20240131" },
	{ "InstanceCreationTime", "101502.123" },
	{ "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2" },
	{ "StudyDate", "20240131" },
	{ "SeriesDate", "20240131" },
	{ "AcquisitionDate", "20240131" },
	{ "ContentDate", "20240131" },
	{ "StudyTime", "100512" },
	{ "SeriesTime", "101011" },
	{ "AcquisitionTime", "101200.5" },
	{ "ContentTime", "101501.25" },
	{ "AccessionNumber", "ACC20240131001" },
	{ "Modality", "CT" },
	{ "Manufacturer", "ACME Medical Systems" },
	{ "InstitutionName", "General Hospital" },
	{ "InstitutionAddress", "1 Hospital Road, Springfield" },
	{ "ReferringPhysicianName", "Smith^Anna^^Dr" },
	{ "StationName", "CT01" },
	{ "StudyDescription", "CT THORAX ABDOMEN WITH CONTRAST" },
	{ "ProcedureCodeSequence[0]/CodeValue", "CTCAP" },
	{ "ProcedureCodeSequence[0]/CodingSchemeDesignator", "99LOCAL" },
	{ "ProcedureCodeSequence[0]/CodeMeaning", "CT chest abdomen pelvis" },
	{ "SeriesDescription", "Thorax 1.0 B31f" },
	{ "OperatorsName", "Tech^One" },
	{ "ManufacturerModelName", "Scanner 128" },
	{ "ReferencedImageSequence[0]/ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2" },
	{ "ReferencedImageSequence[0]/ReferencedSOPInstanceUID", UID_ROOT "9.9.9.1" },
	{ "SourceImageSequence[0]/ReferencedSOPClassUID", "1.2.840.10008.5.1.4.1.1.2" },
	{ "SourceImageSequence[0]/ReferencedSOPInstanceUID", UID_ROOT "9.9.9.2" },
	{ "PatientName", "Doe^Jane" },
	{ "PatientBirthDate", "19630405" },
	{ "PatientSex", "F" },
	{ "PatientAge", "060Y" },
	{ "PatientSize", "1.68" },
	{ "PatientWeight", "64.5" },
	{ "BodyPartExamined", "CHEST" },
	{ "ScanOptions", "HELICAL MODE" },
	{ "SliceThickness", "1.0" },
	{ "KVP", "120" },
	{ "DataCollectionDiameter", "500" },
	{ "DeviceSerialNumber", "SN-123456" },
	{ "SoftwareVersions", "VA48A" },
	{ "ProtocolName", "Thorax_Abdomen_Routine" },
	{ "ReconstructionDiameter", "380" },
	{ "DistanceSourceToDetector", "1085.6" },
	{ "DistanceSourceToPatient", "595" },
	{ "GantryDetectorTilt", "0" },
	{ "TableHeight", "160" },
	{ "RotationDirection", "CW" },
	{ "ExposureTime", "500" },
	{ "XRayTubeCurrent", "210" },
	{ "Exposure", "105" },
	{ "FilterType", "FLAT" },
	{ "GeneratorPower", "25" },
	{ "FocalSpots", "1.2" },
	{ "ConvolutionKernel", "B31f" },
	{ "PatientPosition", "FFS" },
	{ "RevolutionTime", "0.5" },
	{ "SingleCollimationWidth", "0.6" },
	{ "TotalCollimationWidth", "38.4" },
	{ "TableSpeed", "46" },
	{ "SpiralPitchFactor", "1.2" },
	{ "StudyID", "4711" },
	{ "SeriesNumber", "2" },
	{ "AcquisitionNumber", "1" },
	{ "ImageOrientationPatient", "1\\0\\0\\0\\1\\0" },
	{ "FrameOfReferenceUID", UID_ROOT "7.7.7" },
	{ "PositionReferenceIndicator", "XY" },
	{ "SamplesPerPixel", "1" },
	{ "PhotometricInterpretation", "MONOCHROME2" },
	{ "PixelSpacing", "0.7421875\\0.7421875" },
	{ "BitsAllocated", "16" },
	{ "BitsStored", "12" },
	{ "HighBit", "11" },
	{ "PixelRepresentation", "0" },
	{ "BurnedInAnnotation", "NO" },
	{ "WindowCenter", "40\\-600" },
	{ "WindowWidth", "400\\1200" },
	{ "RescaleIntercept", "-1024" },
	{ "RescaleSlope", "1" },
	{ "RescaleType", "HU" },
	{ "LossyImageCompression", "00" },
	{ "AnatomicRegionSequence[0]/CodeValue", "T-D3000" },
	{ "AnatomicRegionSequence[0]/CodingSchemeDesignator", "SRT" },
	{ "AnatomicRegionSequence[0]/CodeMeaning", "Chest" },
};

static void set(fdn_dataset *ds, const char *path, const char *value)
{
	if (fdn_dataset_set_string(ds, path, value) != 0)
		fail("cannot set %s", path);
}

/* The header shared by a series, a private block, and Pixel Data. */
static fdn_dataset *make_series(int patient, int series, int rows, int elements)
{
	static const unsigned char private_blob[200] = { 1, 2, 3 };
	fdn_dataset *ds = NULL;
	uint16_t *pixels;
	size_t i, npix = (size_t)rows * (size_t)rows;
	char v[96];

	if (fdn_dataset_new(&ds, NULL) != 0)
		fail("fdn_dataset_new");
	for (i = 0; i < (size_t)elements; i++)
		set(ds, ct_header[i].path, ct_header[i].value);
	snprintf(v, sizeof(v), "PAT%05d", patient);
	set(ds, "PatientID", v);
	snprintf(v, sizeof(v), UID_ROOT "%d", patient);
	set(ds, "StudyInstanceUID", v);
	snprintf(v, sizeof(v), UID_ROOT "%d.%d", patient, series);
	set(ds, "SeriesInstanceUID", v);
	snprintf(v, sizeof(v), "%d", rows);
	set(ds, "Rows", v);
	set(ds, "Columns", v);
	if (fdn_dataset_set_bytes(ds, "(0029,0010)", "LO", "ACME CT PRIVATE", 15) != 0 ||
	    fdn_dataset_set_bytes(ds, "(0029,1010)", "OB", private_blob, sizeof(private_blob)) != 0 ||
	    fdn_dataset_set_bytes(ds, "(0029,1020)", "LO", "RECON 3", 7) != 0)
		fail("cannot set the private block");
	if (!(pixels = malloc(npix * 2)))
		fail("out of memory");
	for (i = 0; i < npix; i++)
		pixels[i] = (uint16_t)((i * 7) & 0x0FFF);
	if (fdn_dataset_set_bytes(ds, "PixelData", "OW", pixels, npix * 2) != 0)
		fail("cannot set PixelData");
	free(pixels);
	return ds;
}

static void write_bytes(const char *path, const fdn_buf *b)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(b->ptr, 1, b->size, f) != b->size || fclose(f) != 0)
		fail("cannot write %s: %s", path, strerror(errno));
}

/* Plain writes: fdn_dataset_write_file() would fsync every file. */
static void write_instance(fdn_dataset *ds, const char *dir, int patient, int series, int n)
{
	fdn_buf b = FDN_BUF_INIT;
	char v[96], path[1024];

	snprintf(v, sizeof(v), UID_ROOT "%d.%d.%d", patient, series, n);
	set(ds, "SOPInstanceUID", v);
	snprintf(v, sizeof(v), "%d", n);
	set(ds, "InstanceNumber", v);
	snprintf(v, sizeof(v), "-185.5\\-190.0\\%.1f", -400.0 + n);
	set(ds, "ImagePositionPatient", v);
	snprintf(v, sizeof(v), "%.1f", -400.0 + n);
	set(ds, "SliceLocation", v);
	if (fdn_dataset_write_buffer(&b, ds, 0) != 0)
		fail("write_buffer");
	snprintf(path, sizeof(path), "%s/%06d.dcm", dir, n);
	write_bytes(path, &b);
	fdn_buf_dispose(&b);
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		fail("mkdir %s: %s", path, strerror(errno));
}

/* @p files files in series of @p per_series, one patient per series:
 * DIR/pNNNN/sNN/NNNNNN.dcm.  Returns the bytes written. */
static uint64_t write_corpus(const char *dir, int files, int per_series, int rows,
	int elements)
{
	uint64_t bytes = 0;
	int s, i;

	make_dir(dir);
	for (s = 0; s * per_series < files; s++) {
		fdn_dataset *ds = make_series(s, 1, rows, elements);
		char sdir[512];
		struct stat st;

		snprintf(sdir, sizeof(sdir), "%s/p%04d", dir, s);
		make_dir(sdir);
		snprintf(sdir, sizeof(sdir), "%s/p%04d/s01", dir, s);
		make_dir(sdir);
		for (i = 0; i < per_series && s * per_series + i < files; i++) {
			char path[1024];
			write_instance(ds, sdir, s, 1, i + 1);
			snprintf(path, sizeof(path), "%s/%06d.dcm", sdir, i + 1);
			if (stat(path, &st) == 0)
				bytes += (uint64_t)st.st_size;
		}
		fdn_dataset_free(ds);
	}
	return bytes;
}

/* The number of ct_header rows: a full CT header. */
#define CT_HEADER_ELEMENTS ((int)(sizeof(ct_header) / sizeof(ct_header[0])))

#endif
