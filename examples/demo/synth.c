/*
 * Synthetic chest CT slices with invented, realistic patient identities.
 *
 * Everything is drawn from streams of the demo's generator seeded with
 * (seed, site, patient, purpose), so that one patient's image does not
 * change when the identity code changes, and the same inputs always give
 * the same bytes.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"
#include "demo_private.h"

#define N DEMO_IMAGE_SIZE
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Streams of the generator. */
enum { STREAM_IDENTITY = 1, STREAM_IMAGE = 2, STREAM_SITE = 3 };

/* Field of view of the slice: 350 mm over 64 pixels. */
#define FOV_MM 350.0

/* --- sites ---------------------------------------------------------- */

static const demo_site builtin_sites[3] = {
	{ 0, "St. Elisabeth Hospital", "Elisabethstrasse 14, 80796 Muenchen", "Muenchen",
	  "SIEMENS", "SOMATOM Definition AS", "STELCT01", "B30f", 120, 1.0, 0,
	  0.3, 30.0, 0.0, 500.0, 850.0, 3.0, 5.5 },
	{ 1, "Northfield General Hospital", "200 Harbour Road, Northfield NF3 8QT",
	  "Northfield", "GE MEDICAL SYSTEMS", "LightSpeed VCT", "NFGHCTSCAN2", "STANDARD",
	  100, 1.25, 1, 0.5, 45.0, 10.0, 400.0, 800.0, 2.5, 5.0 },
	{ 2, "Riverside University Medical Center", "1 University Plaza, Riverside RV 40512",
	  "Riverside", "Philips", "Brilliance 64", "RUMCCT3", "C", 140, 2.0, 0,
	  0.7, 60.0, -8.0, 300.0, 700.0, 2.5, 4.5 },
};

static const char *const extra_institutions[] = {
	"Lakeside Regional Hospital", "Mount Carmel Clinic", "Hopital Saint-Louis",
	"Ospedale San Marco", "Vale County Infirmary", "Kingsbridge Medical Centre",
};

void demo_site_profile(demo_site *out, unsigned int index)
{
	demo_rng r;
	double f;

	*out = builtin_sites[index % 3];
	out->index = index;
	if (index < 3)
		return;
	/* Another hospital with the same kind of scanner: a new name and
	 * somewhat different image quality and population. */
	demo_rng_seed(&r, index, 0, 0, STREAM_SITE);
	out->institution = extra_institutions[(index - 3) % ARRAY_LEN(extra_institutions)];
	f = demo_rng_range(&r, 0.8, 1.25);
	out->noise_hu *= f;
	out->offset_hu += demo_rng_range(&r, -10.0, 10.0);
	out->prevalence = fmin(0.8, fmax(0.2, out->prevalence + demo_rng_range(&r, -0.1, 0.1)));
}

int demo_is_test_patient(unsigned int patient, double test_fraction)
{
	if (!(test_fraction > 0.0))
		return 0;
	if (test_fraction >= 1.0)
		return 1;
	/* Patient p is in the test split when floor((p+1)·f) > floor(p·f). */
	return floor((patient + 1.0) * test_fraction) > floor(patient * test_fraction);
}

/* --- identities ----------------------------------------------------- */

/* Name components have 6 letters or more: fdn_deid_verify() searches
 * the de-identified data for every component of 4 or more, and a 4- or
 * 5-letter name turns up by chance inside the base32 pseudonym (KHAN in
 * FDN-D2KHAN6...) often enough to fail a demo of a few hundred patients. */
static const char *const family_names[] = {
	"MUELLER", "SCHMIDT", "WRIGHT", "JOHNSON", "GARCIA", "MARTINEZ", "ROMANO",
	"BIANCHI", "DUBOIS", "LEFEBVRE", "KOWALSKI", "LEWANDOWSKI", "NGUYEN", "TANAKA",
	"OKAFOR", "HANSEN", "JANSSEN", "PETROV", "O'BRIEN", "MACDONALD", "SANTOS",
	"FERREIRA", "EKSTROM", "NIEMINEN", "HOFFMANN", "VAN DER BERG", "ALVAREZ",
	"RAHMAN", "CHOPRA", "FRIEDMAN",
};
static const char *const given_female[] = {
	"JOHANNA", "MARIANNE", "SOPHIE", "EMILIA", "CLAIRE", "GIULIA", "ELEONORA",
	"HANNAH", "ADAEZE", "YUKIKO", "INGRID", "FATIMA", "LUCIANA", "MARGARET",
	"AGNIESZKA",
};
static const char *const given_male[] = {
	"THOMAS", "JONATHAN", "LORENZO", "MARCELLO", "PIERRE", "PRZEMYSLAW", "JEREMY",
	"HENRIK", "CHINEDU", "HIROSHI", "MUSTAFA", "DANIEL", "MIGUEL", "STEFAN",
	"WILLIAM",
};
static const char *const streets[] = {
	"Linden Street", "Harbour Road", "Mill Lane", "Church Street", "Oak Avenue",
	"Station Road", "Rosenweg", "Bahnhofstrasse", "Rue des Lilas", "Via Roma",
	"Kings Parade", "Meadow Close", "Elm Grove", "Bridge Street", "Park Terrace",
};

static const char *pick(demo_rng *r, const char *const *list, size_t n)
{
	return list[demo_rng_below(r, (uint32_t)n)];
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

static void format_date(char *out, size_t size, int64_t days)
{
	int y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(out, size, "%04d%02u%02u", y % 10000, m % 100, d % 100);
}

struct identity {
	char name[96], id[16], other_id[24], birth[40], sex[2], age[16], address[128];
	char phone[24], accession[17], study_id[17], referring[64], operator_[64];
	char performing[64], serial[24], study_date[40], study_time[24];
	char series_time[24], acquisition_time[24], weight[8], size[8];
	char study_uid[64], series_uid[64], sop_uid[64], frame_uid[64];
};

static void make_person(char *out, size_t size, demo_rng *r, const char *suffix)
{
	int female = demo_rng_below(r, 2) == 0;
	const char *given = female ? pick(r, given_female, ARRAY_LEN(given_female)) :
		pick(r, given_male, ARRAY_LEN(given_male));

	snprintf(out, size, "%s^%s%s", pick(r, family_names, ARRAY_LEN(family_names)),
		given, suffix);
}

static void make_identity(struct identity *id, const demo_site *site, uint64_t seed,
	unsigned int patient)
{
	demo_rng r, s;
	uint32_t base, base2;
	int female, age;
	int64_t study_day;
	unsigned h, mi, se;

	/* Numbering that is unique per patient and random per site. */
	demo_rng_seed(&s, seed, site->index, 0, STREAM_IDENTITY);
	base = demo_rng_below(&s, 9000000u);
	base2 = demo_rng_below(&s, 100000000u);
	demo_rng_seed(&r, seed, site->index, patient + 1u, STREAM_IDENTITY);

	female = demo_rng_below(&r, 2) == 0;
	snprintf(id->name, sizeof(id->name), "%s^%s^%c",
		pick(&r, family_names, ARRAY_LEN(family_names)),
		female ? pick(&r, given_female, ARRAY_LEN(given_female)) :
			pick(&r, given_male, ARRAY_LEN(given_male)),
		(char)('A' + demo_rng_below(&r, 26)));
	strcpy(id->sex, female ? "F" : "M");
	/* 7919 is prime, so p -> p·7919 mod 9e6 never repeats below 9e6. */
	snprintf(id->id, sizeof(id->id), "%.3s%07u", site->station,
		(unsigned)(1000000u + ((uint64_t)patient * 7919u + base) % 9000000u));
	snprintf(id->other_id, sizeof(id->other_id), "K%09u",
		(unsigned)(demo_rng_next(&r) % 1000000000u));
	snprintf(id->accession, sizeof(id->accession), "A%u%08u", site->index % 10,
		(unsigned)(((uint64_t)patient * 104729u + base2) % 100000000u));
	snprintf(id->study_id, sizeof(id->study_id), "CT%06u",
		(unsigned)(((uint64_t)patient * 7907u + base) % 1000000u));
	snprintf(id->address, sizeof(id->address), "%u %s, %s",
		1u + demo_rng_below(&r, 180), pick(&r, streets, ARRAY_LEN(streets)), site->city);
	snprintf(id->phone, sizeof(id->phone), "+44 %04u %06u", 1000u + demo_rng_below(&r, 9000),
		demo_rng_below(&r, 1000000));
	make_person(id->referring, sizeof(id->referring), &r, "^^DR");
	make_person(id->operator_, sizeof(id->operator_), &r, "");
	make_person(id->performing, sizeof(id->performing), &r, "");
	snprintf(id->serial, sizeof(id->serial), "SN%08u", 10000000u + site->index * 7331u);

	/* Study between 2021-01-01 (day 18628) and the end of 2024. */
	study_day = 18628 + demo_rng_below(&r, 1460);
	age = 40 + (int)demo_rng_below(&r, 46);
	format_date(id->study_date, sizeof(id->study_date), study_day);
	format_date(id->birth, sizeof(id->birth),
		study_day - (int64_t)age * 365 - (age / 4) - demo_rng_below(&r, 360));
	snprintf(id->age, sizeof(id->age), "%03dY", age % 1000);
	h = 7 + demo_rng_below(&r, 12);
	mi = demo_rng_below(&r, 60);
	se = demo_rng_below(&r, 60);
	/* Times with fractions, as most scanners write them. */
	snprintf(id->study_time, sizeof(id->study_time), "%02u%02u%02u.%06u", h, mi, se,
		demo_rng_below(&r, 1000000));
	snprintf(id->series_time, sizeof(id->series_time), "%02u%02u%02u.%06u", h,
		(mi + 2) % 60, se, demo_rng_below(&r, 1000000));
	snprintf(id->acquisition_time, sizeof(id->acquisition_time), "%02u%02u%02u.%06u", h,
		(mi + 3) % 60, se, demo_rng_below(&r, 1000000));
	snprintf(id->weight, sizeof(id->weight), "%u", (female ? 52u : 64u) +
		demo_rng_below(&r, 40));
	snprintf(id->size, sizeof(id->size), "%.2f", (female ? 1.55 : 1.66) +
		0.01 * demo_rng_below(&r, 25));

	demo_uid(id->study_uid, sizeof(id->study_uid), &r);
	demo_uid(id->series_uid, sizeof(id->series_uid), &r);
	demo_uid(id->sop_uid, sizeof(id->sop_uid), &r);
	demo_uid(id->frame_uid, sizeof(id->frame_uid), &r);
}

/* --- the image ------------------------------------------------------ */

struct ellipse {
	double x, y, a, b;
};

static double ellipse_rho2(const struct ellipse *e, double x, double y)
{
	double dx = (x - e->x) / e->a, dy = (y - e->y) / e->b;

	return dx * dx + dy * dy;
}

/* Smooth texture: a 9×9 grid of normal values, bilinearly interpolated
 * over the 64×64 image (8-pixel cells). */
struct texture {
	double g[9][9];
};

static void texture_init(struct texture *t, demo_rng *r)
{
	int i, j;

	for (i = 0; i < 9; i++)
		for (j = 0; j < 9; j++)
			t->g[i][j] = demo_rng_normal(r);
}

static double texture_at(const struct texture *t, double x, double y)
{
	double fx = fmin(fmax(x / 8.0, 0.0), 7.999), fy = fmin(fmax(y / 8.0, 0.0), 7.999);
	int i = (int)fy, j = (int)fx;
	double u = fx - j, v = fy - i;

	return (1 - v) * ((1 - u) * t->g[i][j] + u * t->g[i][j + 1]) +
		v * ((1 - u) * t->g[i + 1][j] + u * t->g[i + 1][j + 1]);
}

#define MAX_VESSELS 9

struct anatomy {
	struct ellipse body, lung[2];
	double spine_x, spine_y, spine_r;
	double lung_hu;                 /* this patient's parenchyma */
	struct texture soft, paren;
	int n_vessels;
	double vx[MAX_VESSELS], vy[MAX_VESSELS], vr[MAX_VESSELS], vc[MAX_VESSELS];
	int nodule;
	double nx, ny, nr, nc;
};

/* A uniform point inside ellipse @p e shrunk by @p margin pixels. */
static void point_in(double *x, double *y, const struct ellipse *e, double margin,
	demo_rng *r)
{
	double a = fmax(e->a - margin, 0.5), b = fmax(e->b - margin, 0.5), u, v;

	do {
		u = demo_rng_range(r, -1.0, 1.0);
		v = demo_rng_range(r, -1.0, 1.0);
	} while (u * u + v * v > 1.0);
	*x = e->x + u * a;
	*y = e->y + v * b;
}

static void make_anatomy(struct anatomy *an, const demo_site *site, uint64_t seed,
	unsigned int patient, int nodule)
{
	demo_rng r;
	double cx, cy;
	int k, i;

	demo_rng_seed(&r, seed, site->index, patient + 1u, STREAM_IMAGE);
	memset(an, 0, sizeof(*an));
	cx = 31.5 + demo_rng_range(&r, -0.5, 0.5);
	cy = 32.5 + demo_rng_range(&r, -0.5, 0.5);
	an->body = (struct ellipse){ cx, cy, 27.0 + demo_rng_range(&r, -0.5, 0.5),
		20.5 + demo_rng_range(&r, -0.5, 0.5) };
	for (k = 0; k < 2; k++) {
		double side = k ? 1.0 : -1.0;

		an->lung[k] = (struct ellipse){
			cx + side * (11.0 + demo_rng_range(&r, -0.3, 0.3)),
			cy - 2.0 + demo_rng_range(&r, -0.3, 0.3),
			7.5 + demo_rng_range(&r, -0.3, 0.3),
			12.5 + demo_rng_range(&r, -0.4, 0.4) };
	}
	an->spine_x = cx + demo_rng_range(&r, -0.5, 0.5);
	an->spine_y = cy + 14.5 + demo_rng_range(&r, -0.5, 0.5);
	an->spine_r = 3.5 + demo_rng_range(&r, -0.4, 0.4);
	an->lung_hu = -850.0 + 10.0 * demo_rng_normal(&r);
	texture_init(&an->soft, &r);
	texture_init(&an->paren, &r);

	/* Vessels seen end-on: small bright dots that look a little like
	 * nodules, which is what makes the task hard. */
	an->n_vessels = 2 + (int)demo_rng_below(&r, MAX_VESSELS - 2);
	for (i = 0; i < an->n_vessels; i++) {
		point_in(&an->vx[i], &an->vy[i], &an->lung[i % 2], 1.5, &r);
		an->vr[i] = demo_rng_range(&r, 0.5, 1.3);
		an->vc[i] = demo_rng_range(&r, 200.0, 500.0);
	}

	an->nodule = nodule;
	/* Drawn whether or not there is a nodule, so that the rest of the
	 * picture does not depend on the finding. */
	an->nr = demo_rng_range(&r, site->radius_min, site->radius_max);
	an->nc = demo_rng_range(&r, site->contrast_min, site->contrast_max);
	k = (int)demo_rng_below(&r, 2);
	point_in(&an->nx, &an->ny, &an->lung[k], an->nr + 1.0, &r);
}

/* The noise-free HU at point (x, y). */
static double structure_hu(const struct anatomy *an, double x, double y)
{
	double rho2 = ellipse_rho2(&an->body, x, y), hu, dx, dy;
	int k, i;

	if (rho2 > 1.0)
		return -1000.0;
	for (k = 0; k < 2; k++) {
		if (ellipse_rho2(&an->lung[k], x, y) > 1.0)
			continue;
		/* Dependent density: the back of the lung is denser. */
		hu = an->lung_hu + 15.0 * texture_at(&an->paren, x, y) +
			30.0 * (y - an->lung[k].y) / an->lung[k].b;
		for (i = 0; i < an->n_vessels; i++) {
			dx = x - an->vx[i];
			dy = y - an->vy[i];
			if (dx * dx + dy * dy <= an->vr[i] * an->vr[i])
				hu += an->vc[i];
		}
		if (an->nodule) {
			dx = x - an->nx;
			dy = y - an->ny;
			if (dx * dx + dy * dy <= an->nr * an->nr)
				hu += an->nc;
		}
		return hu;
	}
	dx = x - an->spine_x;
	dy = y - an->spine_y;
	if (dx * dx + dy * dy <= an->spine_r * an->spine_r)
		return 650.0 + 80.0 * texture_at(&an->soft, x, y);
	if (rho2 > 0.82)
		return -100.0 + 10.0 * texture_at(&an->soft, x, y); /* subcutaneous fat */
	return 40.0 + 12.0 * texture_at(&an->soft, x, y);
}

/* Renders the slice in HU: 2×2 supersampling (partial volume at the
 * edges), the scanner's offset and noise. */
static void render(double *hu, const struct anatomy *an, const demo_site *site,
	uint64_t seed, unsigned int patient)
{
	demo_rng noise;
	int row, col, sy, sx;

	demo_rng_seed(&noise, seed, site->index, patient + 1u, STREAM_IMAGE + 100);
	for (row = 0; row < N; row++) {
		for (col = 0; col < N; col++) {
			double sum = 0.0;

			for (sy = 0; sy < 2; sy++)
				for (sx = 0; sx < 2; sx++)
					sum += structure_hu(an, col + 0.25 + 0.5 * sx,
						row + 0.25 + 0.5 * sy);
			hu[row * N + col] = sum / 4.0 + site->offset_hu +
				site->noise_hu * demo_rng_normal(&noise);
		}
	}
}

void demo__atlas(float *x)
{
	struct anatomy an;
	double sum[DEMO_FEATURES] = { 0 };
	int row, col, sy, sx, k;

	/* The average patient: mean anatomy, no texture, vessel or nodule. */
	memset(&an, 0, sizeof(an));
	an.body = (struct ellipse){ 31.5, 32.5, 27.0, 20.5 };
	for (k = 0; k < 2; k++)
		an.lung[k] = (struct ellipse){ 31.5 + (k ? 11.0 : -11.0), 30.5, 7.5, 12.5 };
	an.spine_x = 31.5;
	an.spine_y = 47.0;
	an.spine_r = 3.5;
	an.lung_hu = -850.0;
	for (row = 0; row < N; row++)
		for (col = 0; col < N; col++)
			for (sy = 0; sy < 2; sy++)
				for (sx = 0; sx < 2; sx++)
					sum[(row / DEMO_POOL) * DEMO_GRID + col / DEMO_POOL] +=
						demo__window(structure_hu(&an, col + 0.25 + 0.5 * sx,
							row + 0.25 + 0.5 * sy));
	for (k = 0; k < DEMO_FEATURES; k++)
		x[k] = (float)(sum[k] / (4.0 * DEMO_POOL * DEMO_POOL));
}

/* HU to stored values: uint16 with intercept -1024, or int16 with
 * intercept 0, as the site's scanner writes them. */
static void store_pixels(unsigned char *px, const double *hu, int signed_pixels)
{
	size_t i;

	for (i = 0; i < (size_t)N * N; i++) {
		double v = floor(hu[i] + (signed_pixels ? 0.0 : 1024.0) + 0.5);
		uint16_t u;

		if (signed_pixels) {
			v = fmin(fmax(v, -32768.0), 32767.0);
			u = (uint16_t)(int16_t)v;
		} else {
			v = fmin(fmax(v, 0.0), 65535.0);
			u = (uint16_t)v;
		}
		px[2 * i] = (unsigned char)(u & 0xFF);
		px[2 * i + 1] = (unsigned char)(u >> 8);
	}
}

/* --- the dataset ---------------------------------------------------- */

struct setter {
	fdn_dataset *ds;
	int rc;
	char what[96];
};

static void set(struct setter *s, const char *path, const char *value)
{
	int rc;

	if (s->rc != 0)
		return;
	if ((rc = fdn_dataset_set_string(s->ds, path, value)) != 0) {
		s->rc = rc;
		snprintf(s->what, sizeof(s->what), "cannot set %s", path);
	}
}

static void setf(struct setter *s, const char *path, const char *fmt, double v)
{
	char text[64];

	snprintf(text, sizeof(text), fmt, v);
	set(s, path, text);
}

static void set_identity(struct setter *s, const struct identity *id, const demo_site *site)
{
	set(s, "SpecificCharacterSet", "ISO_IR 100");
	set(s, "PatientName", id->name);
	set(s, "PatientID", id->id);
	set(s, "IssuerOfPatientID", site->institution);
	set(s, "OtherPatientIDs", id->other_id);
	set(s, "PatientBirthDate", id->birth);
	set(s, "PatientSex", id->sex);
	set(s, "PatientAge", id->age);
	set(s, "PatientWeight", id->weight);
	set(s, "PatientSize", id->size);
	set(s, "PatientAddress", id->address);
	set(s, "PatientTelephoneNumbers", id->phone);
	set(s, "AccessionNumber", id->accession);
	set(s, "StudyID", id->study_id);
	set(s, "ReferringPhysicianName", id->referring);
	set(s, "PerformingPhysicianName", id->performing);
	set(s, "OperatorsName", id->operator_);
	set(s, "InstitutionName", site->institution);
	set(s, "InstitutionAddress", site->address);
	set(s, "InstitutionalDepartmentName", "Radiology");
	set(s, "StationName", site->station);
	set(s, "DeviceSerialNumber", id->serial);
	set(s, "StudyDate", id->study_date);
	set(s, "SeriesDate", id->study_date);
	set(s, "AcquisitionDate", id->study_date);
	set(s, "ContentDate", id->study_date);
	set(s, "StudyTime", id->study_time);
	set(s, "SeriesTime", id->series_time);
	set(s, "AcquisitionTime", id->acquisition_time);
	set(s, "ContentTime", id->acquisition_time);
	set(s, "StudyInstanceUID", id->study_uid);
	set(s, "SeriesInstanceUID", id->series_uid);
	set(s, "SOPInstanceUID", id->sop_uid);
	set(s, "FrameOfReferenceUID", id->frame_uid);
}

static void set_image(struct setter *s, const demo_site *site, double z)
{
	char text[96];
	double spacing = FOV_MM / N;

	set(s, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2");
	set(s, "ImageType", "ORIGINAL\\PRIMARY\\AXIAL");
	set(s, "Modality", "CT");
	set(s, "Manufacturer", site->manufacturer);
	set(s, "ManufacturerModelName", site->model_name);
	set(s, "StudyDescription", "CT CHEST LOW DOSE");
	set(s, "SeriesDescription", "Thorax 5mm axial");
	set(s, "BodyPartExamined", "CHEST");
	set(s, "ScanOptions", "HELICAL MODE");
	set(s, "ConvolutionKernel", site->kernel);
	setf(s, "KVP", "%.0f", site->kvp);
	setf(s, "SliceThickness", "%g", site->slice_thickness);
	set(s, "XRayTubeCurrent", "110");
	set(s, "PatientPosition", "HFS");
	set(s, "SeriesNumber", "2");
	set(s, "InstanceNumber", "1");
	snprintf(text, sizeof(text), "%g\\%g\\%g", -FOV_MM / 2, -FOV_MM / 2, z);
	set(s, "ImagePositionPatient", text);
	set(s, "ImageOrientationPatient", "1\\0\\0\\0\\1\\0");
	setf(s, "SliceLocation", "%g", z);
	snprintf(text, sizeof(text), "%g\\%g", spacing, spacing);
	set(s, "PixelSpacing", text);
	set(s, "SamplesPerPixel", "1");
	set(s, "PhotometricInterpretation", "MONOCHROME2");
	setf(s, "Rows", "%.0f", N);
	setf(s, "Columns", "%.0f", N);
	set(s, "BitsAllocated", "16");
	set(s, "BitsStored", "16");
	set(s, "HighBit", "15");
	set(s, "PixelRepresentation", site->signed_pixels ? "1" : "0");
	set(s, "RescaleIntercept", site->signed_pixels ? "0" : "-1024");
	set(s, "RescaleSlope", "1");
	set(s, "RescaleType", "HU");
	set(s, "WindowCenter", "-600");
	set(s, "WindowWidth", "1500");
	set(s, "BurnedInAnnotation", "NO");
}

int demo_synth_study(fdn_dataset **out, demo_truth *truth, const demo_site *site,
	uint64_t seed, unsigned int patient)
{
	double hu[N * N];
	unsigned char px[2 * N * N];
	struct identity id;
	struct anatomy an;
	struct setter s;
	demo_rng r;
	int nodule, rc;

	if (!out || !site)
		return demo__fail(FDN_EINVALID, "demo_synth_study: NULL argument");
	*out = NULL;
	/* The finding has a stream of its own: prevalence alone decides it. */
	demo_rng_seed(&r, seed, site->index, patient + 1u, STREAM_IMAGE + 200);
	nodule = demo_rng_uniform(&r) < site->prevalence;
	make_identity(&id, site, seed, patient);
	make_anatomy(&an, site, seed, patient, nodule);
	render(hu, &an, site, seed, patient);
	store_pixels(px, hu, site->signed_pixels);

	memset(&s, 0, sizeof(s));
	if ((rc = fdn_dataset_new(&s.ds, NULL)) != 0)
		return demo__lib(rc, "cannot create a dataset");
	set_identity(&s, &id, site);
	set_image(&s, site, -120.0 + 5.0 * demo_rng_below(&r, 20));
	if (s.rc == 0 && (rc = fdn_dataset_set_bytes(s.ds, "PixelData", "OW", px,
			sizeof(px))) != 0) {
		s.rc = rc;
		snprintf(s.what, sizeof(s.what), "cannot set PixelData");
	}
	if (s.rc != 0) {
		rc = demo__lib(s.rc, s.what);
		fdn_dataset_free(s.ds);
		return rc;
	}
	if (truth) {
		truth->nodule = nodule;
		truth->x = nodule ? an.nx : 0.0;
		truth->y = nodule ? an.ny : 0.0;
		truth->radius = nodule ? an.nr : 0.0;
		truth->contrast = nodule ? an.nc : 0.0;
		truth->test = 0;
	}
	*out = s.ds;
	return 0;
}
