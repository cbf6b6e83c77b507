/*
 * The demo (examples/demo/): synthetic studies that are deterministic
 * and carry PHI until de-identification removes all of it, sites that
 * land in a registry with their labels and cohorts, and a trainer that
 * learns, is reproducible to the bit, honours FedProx and consent, and
 * refuses models that are not its own.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <jansson.h>

#include "testutil.h"
#include "fednode/fednode.h"
#include "demo.h"

#define SEED 20240601u
#define SITES 3
#define PATIENTS 20
#define TEST_FRACTION 0.25
#define N_TEST 5           /* PATIENTS * TEST_FRACTION */
#define N_TRAIN (PATIENTS - N_TEST)

static char tmpdir[256];
static unsigned char key[FDN_DEID_KEY_BYTES];
static char site_dir[SITES][512];
static demo_populate_stats site_stats[SITES];
static fdn_registry *regs[SITES];

static const char *path_in(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static int setup(void **state)
{
	unsigned s;

	(void)state;
	if (fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "demo") != 0 || fdn_init() != 0)
		return -1;
	memset(key, 0x42, sizeof(key));
	/* Three small sites shared by the trainer tests. */
	for (s = 0; s < SITES; s++) {
		fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
		demo_site site;

		snprintf(site_dir[s], sizeof(site_dir[s]), "%s/site%u", tmpdir, s);
		demo_site_profile(&site, s);
		if (demo_site_populate(&site_stats[s], site_dir[s], key, &site, PATIENTS,
				TEST_FRACTION, SEED, NULL, NULL, NULL) != 0) {
			fprintf(stderr, "populate: %s\n", demo_error_message());
			return -1;
		}
		if (fdn_registry_open(&regs[s], site_dir[s], &o) != 0)
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	unsigned s;

	(void)state;
	for (s = 0; s < SITES; s++)
		fdn_registry_free(regs[s]);
	if (fdn_test_rmtree(tmpdir) != 0)
		return -1;
	return fdn_shutdown() < 0;
}

#define DEMO_OK(call)                                                     \
	do {                                                               \
		int demo_rc_ = (call);                                     \
		if (demo_rc_ != 0)                                         \
			fail_msg("%s = %d: %s", #call, demo_rc_,           \
				demo_error_message());                     \
	} while (0)

static void written(fdn_buf *out, const fdn_dataset *ds)
{
	OK(fdn_dataset_write_buffer(out, ds, FDN_WRITE_DEFAULT));
}

static char *get(const fdn_dataset *ds, const char *path)
{
	fdn_buf b = FDN_BUF_INIT;
	char *s;

	if (fdn_dataset_get_string(&b, ds, path) != 0)
		return NULL;
	s = strdup(b.ptr ? b.ptr : "");
	fdn_buf_dispose(&b);
	return s;
}

/* --- synthetic studies ------------------------------------------------ */

static void test_synth_deterministic(void **state)
{
	fdn_dataset *a = NULL, *b = NULL, *c = NULL;
	fdn_buf ba = FDN_BUF_INIT, bb = FDN_BUF_INIT, bc = FDN_BUF_INIT;
	demo_truth ta, tb;
	demo_site site;

	(void)state;
	demo_site_profile(&site, 1);
	DEMO_OK(demo_synth_study(&a, &ta, &site, SEED, 7));
	DEMO_OK(demo_synth_study(&b, &tb, &site, SEED, 7));
	DEMO_OK(demo_synth_study(&c, NULL, &site, SEED, 8));
	written(&ba, a);
	written(&bb, b);
	written(&bc, c);
	assert_int_equal(ba.size, bb.size);
	assert_memory_equal(ba.ptr, bb.ptr, ba.size);
	assert_int_equal(ta.nodule, tb.nodule);
	assert_true(ta.x == tb.x && ta.y == tb.y && ta.radius == tb.radius &&
		ta.contrast == tb.contrast);
	assert_true(ba.size != bc.size || memcmp(ba.ptr, bc.ptr, ba.size) != 0);
	fdn_buf_dispose(&ba);
	fdn_buf_dispose(&bb);
	fdn_buf_dispose(&bc);
	fdn_dataset_free(a);
	fdn_dataset_free(b);
	fdn_dataset_free(c);
}

/* A CT image the trainer can read: 64×64 16-bit, rescaled to HU, with
 * the scanner of its site; the finding is where the truth says. */
static void test_synth_image(void **state)
{
	demo_site site;
	unsigned s;

	(void)state;
	for (s = 0; s < SITES; s++) {
		fdn_instance_info info;
		fdn_dataset *ds = NULL;
		fdn_buf px = FDN_BUF_INIT;
		demo_truth t;
		double slope, icept, hu_nodule, hu_air;
		char *man;
		unsigned p;
		int sign;

		memset(&info, 0, sizeof(info));
		info.version = FDN_INSTANCE_INFO_VERSION;
		demo_site_profile(&site, s);
		/* The first patient of the site with a nodule. */
		for (p = 0;; p++) {
			DEMO_OK(demo_synth_study(&ds, &t, &site, SEED, p));
			if (t.nodule)
				break;
			fdn_dataset_free(ds);
		}
		OK(fdn_dataset_instance_info(&info, ds));
		assert_string_equal(info.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
		assert_string_equal(info.transfer_syntax_uid, "1.2.840.10008.1.2.1");
		assert_string_equal(info.modality, "CT");
		assert_int_equal(info.rows, DEMO_IMAGE_SIZE);
		assert_int_equal(info.columns, DEMO_IMAGE_SIZE);
		assert_int_equal(strncmp(info.study_instance_uid, "2.25.", 5), 0);
		man = get(ds, "Manufacturer");
		assert_string_equal(man, site.manufacturer);
		free(man);
		OK(fdn_dataset_get_number(&slope, ds, "RescaleSlope", 0));
		OK(fdn_dataset_get_number(&icept, ds, "RescaleIntercept", 0));
		sign = site.signed_pixels;
		OK(fdn_dataset_get_bytes(&px, ds, "PixelData"));
		assert_int_equal(px.size, 2 * DEMO_IMAGE_SIZE * DEMO_IMAGE_SIZE);
		{
			const unsigned char *b = (const unsigned char *)px.ptr;
			size_t at = 2 * ((size_t)floor(t.y) * DEMO_IMAGE_SIZE + (size_t)floor(t.x));
			uint16_t u = (uint16_t)(b[at] | (b[at + 1] << 8)), u0 = (uint16_t)(b[0] | (b[1] << 8));

			hu_nodule = (sign ? (int16_t)u : u) * slope + icept;
			hu_air = (sign ? (int16_t)u0 : u0) * slope + icept;
		}
		/* A nodule is far brighter than the lung (-850 HU); the corner is air. */
		assert_true(hu_nodule > -850 + 100);
		assert_true(hu_air < -800);
		assert_true(t.radius >= site.radius_min && t.radius <= site.radius_max);
		fdn_buf_dispose(&px);
		fdn_dataset_free(ds);
	}
}

static void test_split(void **state)
{
	unsigned p, n = 0;

	(void)state;
	for (p = 0; p < 100; p++)
		n += (unsigned)demo_is_test_patient(p, 0.3);
	assert_int_equal(n, 30);
	for (p = 0, n = 0; p < 40; p++)
		n += (unsigned)demo_is_test_patient(p, 0.25);
	assert_int_equal(n, 10);
	assert_int_equal(demo_is_test_patient(3, 0.0), 0);
}

/* Sites past the three built-in ones are other hospitals of the same
 * kinds, with data of their own. */
static void test_more_sites(void **state)
{
	demo_site a, b;
	fdn_dataset *da = NULL, *db = NULL;
	char *ia, *ib;

	(void)state;
	demo_site_profile(&a, 0);
	demo_site_profile(&b, 3);
	assert_int_equal(b.index, 3);
	assert_string_equal(a.manufacturer, b.manufacturer);
	assert_true(strcmp(a.institution, b.institution) != 0);
	assert_true(b.prevalence >= 0.2 && b.prevalence <= 0.8);
	assert_true(b.noise_hu > 0);
	DEMO_OK(demo_synth_study(&da, NULL, &a, SEED, 0));
	DEMO_OK(demo_synth_study(&db, NULL, &b, SEED, 0));
	ia = get(da, "PatientID");
	ib = get(db, "PatientID");
	assert_true(strcmp(ia, ib) != 0);
	free(ia);
	free(ib);
	fdn_dataset_free(da);
	fdn_dataset_free(db);
}

/* --- PHI --------------------------------------------------------------- */

/* The identifying values of the original, and each name component. */
static const char *const phi_paths[] = {
	"PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate",
	"PatientAddress", "PatientTelephoneNumbers", "AccessionNumber", "StudyID",
	"ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
	"InstitutionName", "InstitutionAddress", "StationName", "DeviceSerialNumber",
	"StudyDate", "StudyTime", "SeriesTime", "AcquisitionTime", "StudyInstanceUID",
	"SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
};

static int contains(const fdn_buf *hay, const char *needle)
{
	size_t n = strlen(needle);

	return n && memmem(hay->ptr, hay->size, needle, n) != NULL;
}

static void assert_absent(const fdn_buf *hay, const char *value, const char *path)
{
	char *copy = strdup(value), *tok, *save = NULL;

	if (contains(hay, value))
		fail_msg("%s value '%s' left after de-identification", path, value);
	/* Each name component (FAMILY^GIVEN^M) of 4 characters or more. */
	for (tok = strtok_r(copy, "^", &save); tok; tok = strtok_r(NULL, "^", &save))
		if (strlen(tok) >= 4 && strcmp(tok, "Radiology") && contains(hay, tok))
			fail_msg("%s component '%s' left after de-identification", path, tok);
	free(copy);
}

static void test_phi_removed(void **state)
{
	fdn_deid_options o = FDN_DEID_OPTIONS_INIT;
	fdn_deid_profile *profile = NULL;
	unsigned s, p;

	(void)state;
	o.key = key;
	OK(fdn_deid_profile_new(&profile, &o));
	for (s = 0; s < SITES; s++) {
		demo_site site;

		demo_site_profile(&site, s);
		for (p = 0; p < 4; p++) {
			fdn_dataset *orig = NULL, *deid = NULL;
			fdn_deid_report *rep = NULL;
			fdn_buf out = FDN_BUF_INIT, json = FDN_BUF_INIT;
			char *v;
			size_t i;

			DEMO_OK(demo_synth_study(&orig, NULL, &site, SEED, p));
			/* The original is fully identified. */
			for (i = 0; i < sizeof(phi_paths) / sizeof(phi_paths[0]); i++) {
				v = get(orig, phi_paths[i]);
				if (!v || strlen(v) < 2)
					fail_msg("original without %s", phi_paths[i]);
				free(v);
			}
			OK(fdn_dataset_clone(&deid, orig));
			OK(fdn_deid_apply(NULL, profile, deid));
			OK(fdn_deid_verify(&rep, profile, orig, deid));
			assert_int_equal(fdn_deid_report_leak_count(rep), 0);
			fdn_deid_report_free(rep);

			written(&out, deid);
			OK(fdn_dataset_to_json(&json, deid, FDN_JSON_SKIP_BINARY));
			for (i = 0; i < sizeof(phi_paths) / sizeof(phi_paths[0]); i++) {
				v = get(orig, phi_paths[i]);
				assert_absent(&out, v, phi_paths[i]);
				assert_absent(&json, v, phi_paths[i]);
				free(v);
			}
			v = get(deid, "PatientID");
			assert_int_equal(strncmp(v, "FDN-", 4), 0);
			free(v);
			v = get(deid, "PatientIdentityRemoved");
			assert_string_equal(v, "YES");
			free(v);
			fdn_buf_dispose(&out);
			fdn_buf_dispose(&json);
			fdn_dataset_free(deid);
			fdn_dataset_free(orig);
		}
	}
	fdn_deid_profile_free(profile);
}

/* --- sites ------------------------------------------------------------- */

static void count_cohort(fdn_registry *reg, const char *name, const char *split,
	unsigned *members, unsigned *nodules)
{
	fdn_cohort_iter *it = NULL;
	fdn_cohort_member m;
	int rc;

	*members = *nodules = 0;
	OK(fdn_cohort_iter_new(&it, reg, name, "test"));
	while ((rc = fdn_cohort_iter_next(&m, it)) == 0) {
		json_t *labels = json_loads(m.labels_json, 0, NULL);
		const char *f = json_string_value(json_object_get(labels, DEMO_LABEL_FINDING));
		const char *sp = json_string_value(json_object_get(labels, DEMO_LABEL_SPLIT));

		assert_non_null(f);
		assert_non_null(sp);
		assert_string_equal(sp, split);
		assert_true(!strcmp(f, "nodule") || !strcmp(f, "none"));
		*nodules += !strcmp(f, "nodule");
		(*members)++;
		assert_int_equal(strncmp(m.patient, "FDN-", 4), 0);
		assert_true(m.locator[0] != '\0');
		json_decref(labels);
	}
	assert_int_equal(rc, FDN_ENOTFOUND);
	fdn_cohort_iter_free(it);
}

static void test_populate_counts(void **state)
{
	fdn_registry_stats st;
	unsigned s, train, test, ntrain, ntest;
	uint64_t n;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.version = FDN_REGISTRY_STATS_VERSION;
	for (s = 0; s < SITES; s++) {
		const demo_populate_stats *ps = &site_stats[s];

		assert_int_equal(ps->patients, PATIENTS);
		assert_int_equal(ps->test, N_TEST);
		assert_int_equal(ps->train, N_TRAIN);
		OK(fdn_registry_stats_get(&st, regs[s]));
		assert_int_equal(st.patients, PATIENTS);
		assert_int_equal(st.studies, PATIENTS);
		assert_int_equal(st.instances, PATIENTS);
		assert_int_equal(st.cohorts, 2);
		count_cohort(regs[s], DEMO_COHORT_TRAIN, "train", &train, &ntrain);
		count_cohort(regs[s], DEMO_COHORT_TEST, "test", &test, &ntest);
		assert_int_equal(train, N_TRAIN);
		assert_int_equal(test, N_TEST);
		assert_int_equal(ntrain + ntest, ps->nodules);
		OK(fdn_registry_query_count(&n, regs[s], "label.finding = 'nodule'"));
		assert_int_equal(n, ps->nodules);
	}
	/* Prevalence differs by site (0.3, 0.5, 0.7). */
	assert_true(site_stats[0].nodules < site_stats[2].nodules);
}

static int file_holds(const char *path, const char *const *needles, size_t n_needles)
{
	FILE *f = fopen(path, "rb");
	fdn_buf b = FDN_BUF_INIT;
	char chunk[65536];
	size_t got, i;
	int found = 0;

	assert_non_null(f);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		char *grown = realloc(b.ptr, b.size + got);

		assert_non_null(grown);
		b.ptr = grown;
		memcpy(b.ptr + b.size, chunk, got);
		b.size += got;
	}
	fclose(f);
	for (i = 0; i < n_needles && !found; i++)
		found = b.size && contains(&b, needles[i]);
	free(b.ptr);
	return found;
}

/* Every file of a folder tree; returns how many hold a needle. */
static unsigned scan_tree(const char *dir, const char *const *needles, size_t n, unsigned *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned hits = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[1024];
		struct stat sb;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_int_equal(lstat(path, &sb), 0);
		if (S_ISDIR(sb.st_mode)) {
			hits += scan_tree(path, needles, n, files);
		} else if (S_ISREG(sb.st_mode)) {
			(*files)++;
			hits += (unsigned)file_holds(path, needles, n);
		}
	}
	closedir(d);
	return hits;
}

/* Nothing the site wrote holds an original identifier: not the stored
 * files, not the database, not the audit log. */
static void test_populate_no_phi_on_disk(void **state)
{
	const char *needles[4 * PATIENTS];
	char *owned[4 * PATIENTS];
	size_t n = 0, i;
	unsigned p, files = 0;
	demo_site site;

	(void)state;
	/* Registries closed: the WAL is checkpointed into registry.db. */
	fdn_registry_free(regs[0]);
	regs[0] = NULL;
	demo_site_profile(&site, 0);
	for (p = 0; p < PATIENTS; p++) {
		fdn_dataset *orig = NULL;

		DEMO_OK(demo_synth_study(&orig, NULL, &site, SEED, p));
		owned[n] = get(orig, "PatientID");
		owned[n + 1] = get(orig, "PatientName");
		owned[n + 2] = get(orig, "AccessionNumber");
		owned[n + 3] = get(orig, "StudyInstanceUID");
		for (i = 0; i < 4; i++)
			needles[n + i] = owned[n + i];
		n += 4;
		fdn_dataset_free(orig);
	}
	assert_int_equal(scan_tree(site_dir[0], needles, n, &files), 0);
	assert_true(files >= PATIENTS + 1);
	for (i = 0; i < n; i++)
		free(owned[i]);
	{
		fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;

		OK(fdn_registry_open(&regs[0], site_dir[0], &o));
	}
}

static void test_populate_refuses_used_registry(void **state)
{
	demo_site site;

	(void)state;
	demo_site_profile(&site, 0);
	assert_int_equal(demo_site_populate(NULL, site_dir[1], key, &site, 3, 0.3, SEED, NULL,
		NULL, NULL), FDN_ECONFLICT);
	assert_non_null(strstr(demo_error_message(), "not empty"));
	assert_int_equal(demo_site_populate(NULL, path_in("x"), key, &site, 0, 0.3, SEED, NULL,
		NULL, NULL), FDN_EINVALID);
	assert_int_equal(demo_site_populate(NULL, path_in("x"), key, &site, 3, 1.0, SEED, NULL,
		NULL, NULL), FDN_EINVALID);
}

static int stop_at_three(const fdn_progress *p, void *payload)
{
	unsigned *calls = payload;

	assert_string_equal(p->stage, "demo.populate");
	assert_int_equal(p->items_total, 5);
	(*calls)++;
	return p->items_done == 3 ? FDN_EUSER : 0;
}

/* The originals go where they are asked to, and only there; a progress
 * callback that says stop leaves no instance behind. */
static void test_populate_originals_and_stop(void **state)
{
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry_stats st;
	fdn_registry *reg = NULL;
	demo_populate_stats ps;
	demo_site site;
	fdn_dataset *ds = NULL;
	char dir[600], orig[600], file[700], *name;
	unsigned calls = 0;

	(void)state;
	demo_site_profile(&site, 2);
	snprintf(dir, sizeof(dir), "%s", path_in("orig-site"));
	snprintf(orig, sizeof(orig), "%s", path_in("originals"));
	DEMO_OK(demo_site_populate(&ps, dir, key, &site, 4, 0.25, SEED, orig, NULL, NULL));
	assert_int_equal(ps.patients, 4);
	snprintf(file, sizeof(file), "%s/patient-0003.dcm", orig);
	OK(fdn_dataset_read_file(&ds, file, FDN_READ_HEADER_ONLY));
	name = get(ds, "PatientName");
	assert_true(name && strchr(name, '^') && strncmp(name, "FDN-", 4) != 0);
	free(name);
	fdn_dataset_free(ds);

	snprintf(dir, sizeof(dir), "%s", path_in("stopped-site"));
	assert_int_equal(demo_site_populate(&ps, dir, key, &site, 5, 0.2, SEED, NULL,
		stop_at_three, &calls), FDN_EUSER);
	assert_int_equal(calls, 3);
	OK(fdn_registry_open(&reg, dir, &o));
	memset(&st, 0, sizeof(st));
	st.version = FDN_REGISTRY_STATS_VERSION;
	OK(fdn_registry_stats_get(&st, reg));
	assert_int_equal(st.instances, 0);
	fdn_registry_free(reg);
}

/* --- the trainer ------------------------------------------------------- */

static fdn_train_config config(unsigned epochs, double lr, double mu, uint64_t seed)
{
	fdn_train_config c;

	memset(&c, 0, sizeof(c));
	c.version = FDN_TRAIN_CONFIG_VERSION;
	c.federation = "test";
	c.round = 1;
	c.local_epochs = epochs;
	c.learning_rate = lr;
	c.proximal_mu = mu;
	c.seed = seed;
	return c;
}

static void model_bytes(fdn_buf *out, const fdn_model *m)
{
	OK(fdn_model_write_buffer(out, m));
}

static void test_model_init(void **state)
{
	fdn_model *a = NULL, *b = NULL;
	fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;
	fdn_buf ba = FDN_BUF_INIT, bb = FDN_BUF_INIT;
	size_t i;

	(void)state;
	DEMO_OK(demo_model_init(&a, 5));
	DEMO_OK(demo_model_init(&b, 5));
	assert_int_equal(fdn_model_tensor_count(a), 2);
	OK(fdn_model_find(&i, a, DEMO_TENSOR_WEIGHT));
	OK(fdn_model_tensor(&ti, a, i));
	assert_int_equal(ti.dtype, FDN_DTYPE_F32);
	assert_int_equal(ti.ndim, 2);
	assert_int_equal(ti.shape[0], 2);
	assert_int_equal(ti.shape[1], 256);
	OK(fdn_model_find(&i, a, DEMO_TENSOR_BIAS));
	OK(fdn_model_tensor(&ti, a, i));
	assert_int_equal(ti.ndim, 1);
	assert_int_equal(ti.shape[0], 2);
	model_bytes(&ba, a);
	model_bytes(&bb, b);
	assert_int_equal(ba.size, bb.size);
	assert_memory_equal(ba.ptr, bb.ptr, ba.size);
	fdn_buf_dispose(&ba);
	fdn_buf_dispose(&bb);
	fdn_model_free(a);
	fdn_model_free(b);
}

/* Training lowers the loss, and a model trained on the three sites
 * pooled is far better than chance on their test splits. */
static void test_train_learns(void **state)
{
	fdn_train_config c = config(25, 0, 0, 11);
	fdn_model *init = NULL, *trained = NULL;
	demo_trainer *t = NULL;
	demo_metrics before, after, train_m, test_m, test0;

	(void)state;
	DEMO_OK(demo_trainer_new(&t));
	DEMO_OK(demo_model_init(&init, 3));
	DEMO_OK(demo_evaluate(&before, t, init, regs, SITES, DEMO_COHORT_TRAIN));
	DEMO_OK(demo_evaluate(&test0, t, init, regs, SITES, DEMO_COHORT_TEST));
	DEMO_OK(demo_train(&trained, &train_m, t, init, regs, SITES, DEMO_COHORT_TRAIN, &c));
	DEMO_OK(demo_evaluate(&after, t, trained, regs, SITES, DEMO_COHORT_TRAIN));
	DEMO_OK(demo_evaluate(&test_m, t, trained, regs, SITES, DEMO_COHORT_TEST));
	print_message("loss %.3f -> %.3f, train acc %.3f, test acc %.3f -> %.3f (n=%u)\n",
		before.loss, after.loss, after.accuracy, test0.accuracy, test_m.accuracy,
		(unsigned)test_m.n);
	assert_int_equal(before.n, SITES * N_TRAIN);
	assert_int_equal(test_m.n, SITES * N_TEST);
	assert_true(after.loss < 0.7 * before.loss);
	assert_true(fabs(train_m.loss - after.loss) < 1e-9);
	assert_true(after.accuracy > 0.85);
	assert_true(test_m.accuracy >= 0.7);
	/* Every file was read once, whatever the number of passes. */
	assert_int_equal(demo_trainer_files_read(t), SITES * PATIENTS);
	fdn_model_free(trained);
	fdn_model_free(init);
	demo_trainer_free(t);
}

static void test_train_deterministic(void **state)
{
	fdn_train_config c = config(3, 0.3, 0.01, 77), d = config(3, 0.3, 0.01, 78);
	demo_trainer *t1 = NULL, *t2 = NULL;
	fdn_model *init = NULL, *a = NULL, *b = NULL, *other = NULL;
	fdn_buf ba = FDN_BUF_INIT, bb = FDN_BUF_INIT, bo = FDN_BUF_INIT;

	(void)state;
	/* Small batches, so that the order of the examples matters. */
	c.extra_json = d.extra_json = "{\"batch_size\": 4}";
	DEMO_OK(demo_trainer_new(&t1));
	DEMO_OK(demo_trainer_new(&t2));
	DEMO_OK(demo_model_init(&init, 9));
	/* A trainer with a warm cache and a cold one give the same bits. */
	DEMO_OK(demo_train(&a, NULL, t1, init, &regs[1], 1, DEMO_COHORT_TRAIN, &c));
	fdn_model_free(a);
	DEMO_OK(demo_train(&a, NULL, t1, init, &regs[1], 1, DEMO_COHORT_TRAIN, &c));
	DEMO_OK(demo_train(&b, NULL, t2, init, &regs[1], 1, DEMO_COHORT_TRAIN, &c));
	DEMO_OK(demo_train(&other, NULL, t2, init, &regs[1], 1, DEMO_COHORT_TRAIN, &d));
	model_bytes(&ba, a);
	model_bytes(&bb, b);
	model_bytes(&bo, other);
	assert_int_equal(ba.size, bb.size);
	assert_memory_equal(ba.ptr, bb.ptr, ba.size);
	/* Another seed shuffles otherwise. */
	assert_int_equal(ba.size, bo.size);
	assert_true(memcmp(ba.ptr, bo.ptr, ba.size) != 0);
	fdn_buf_dispose(&ba);
	fdn_buf_dispose(&bb);
	fdn_buf_dispose(&bo);
	fdn_model_free(a);
	fdn_model_free(b);
	fdn_model_free(other);
	fdn_model_free(init);
	demo_trainer_free(t1);
	demo_trainer_free(t2);
}

static void weights(float *w, const fdn_model *m)
{
	fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;
	size_t i;

	OK(fdn_model_find(&i, m, DEMO_TENSOR_WEIGHT));
	OK(fdn_model_tensor(&ti, m, i));
	memcpy(w, ti.data, ti.nbytes);
}

static double distance(const fdn_model *a, const fdn_model *b)
{
	float wa[2 * 256], wb[2 * 256];
	double s = 0;
	size_t i;

	weights(wa, a);
	weights(wb, b);
	for (i = 0; i < 2 * 256; i++)
		s += ((double)wa[i] - wb[i]) * ((double)wa[i] - wb[i]);
	return sqrt(s);
}

static void test_fedprox(void **state)
{
	fdn_train_config plain = config(5, 0.5, 0, 4), prox = config(5, 0.5, 1.0, 4);
	fdn_model *global = NULL, *a = NULL, *b = NULL;
	demo_trainer *t = NULL;
	double da, db;

	(void)state;
	DEMO_OK(demo_trainer_new(&t));
	DEMO_OK(demo_model_init(&global, 1));
	DEMO_OK(demo_train(&a, NULL, t, global, &regs[2], 1, DEMO_COHORT_TRAIN, &plain));
	DEMO_OK(demo_train(&b, NULL, t, global, &regs[2], 1, DEMO_COHORT_TRAIN, &prox));
	da = distance(a, global);
	db = distance(b, global);
	print_message("||w - w_global||: mu=0 %.4f, mu=1 %.4f\n", da, db);
	assert_true(db < 0.8 * da);
	assert_true(db > 0);
	fdn_model_free(a);
	fdn_model_free(b);
	fdn_model_free(global);
	demo_trainer_free(t);
}

/* Through the fdn_trainer vtable, as the client will call it. */
static void test_iface(void **state)
{
	const fdn_trainer *iface = demo_trainer_iface();
	fdn_train_config c = config(2, 0, 0, 5);
	fdn_model *global = NULL, *out = NULL;
	fdn_buf metrics = FDN_BUF_INIT, before = FDN_BUF_INIT, after = FDN_BUF_INIT;
	demo_trainer *t = NULL;
	uint64_t n = 0;
	json_t *j;

	(void)state;
	assert_int_equal(iface->version, FDN_TRAINER_VERSION);
	DEMO_OK(demo_trainer_new(&t));
	DEMO_OK(demo_model_init(&global, 2));
	c.extra_json = "{\"batch_size\": 8, \"note\": \"ignored\"}";
	DEMO_OK(iface->train(t, global, regs[0], DEMO_COHORT_TRAIN, &c, &out, &n, &metrics));
	assert_int_equal(n, N_TRAIN);
	j = json_loads(metrics.ptr, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_number(json_object_get(j, "loss")));
	assert_true(json_is_number(json_object_get(j, "accuracy")));
	json_decref(j);
	assert_int_equal(fdn_model_tensor_count(out), 2);

	/* Evaluation leaves the model as it was. */
	model_bytes(&before, out);
	DEMO_OK(iface->evaluate(t, out, regs[0], DEMO_COHORT_TEST, &c, &n, &metrics));
	model_bytes(&after, out);
	assert_int_equal(n, N_TEST);
	assert_int_equal(before.size, after.size);
	assert_memory_equal(before.ptr, after.ptr, before.size);
	j = json_loads(metrics.ptr, 0, NULL);
	assert_true(json_is_number(json_object_get(j, "accuracy")));
	json_decref(j);

	c.extra_json = "{\"batch_size\": 0}";
	fdn_model_free(out);
	out = NULL;
	assert_int_equal(iface->train(t, global, regs[0], DEMO_COHORT_TRAIN, &c, &out, &n,
		&metrics), FDN_EINVALID);
	assert_null(out);
	c.extra_json = NULL;
	assert_int_equal(iface->train(t, global, regs[0], "no-such-cohort", &c, &out, &n,
		&metrics), FDN_ENOTFOUND);
	assert_non_null(strstr(demo_error_message(), "no-such-cohort"));

	fdn_buf_dispose(&metrics);
	fdn_buf_dispose(&before);
	fdn_buf_dispose(&after);
	fdn_model_free(global);
	demo_trainer_free(t);
}

/* A model with other tensors, shapes or dtypes is refused before any
 * file is read, with a message that names the tensor. */
static void test_bad_models(void **state)
{
	static const float w[2 * 256], wb[2 * 128], b[2];
	static const double bd[2];
	const uint64_t s2x256[2] = { 2, 256 }, s2x128[2] = { 2, 128 }, s2[1] = { 2 };
	const fdn_trainer *iface = demo_trainer_iface();
	fdn_train_config c = config(1, 0, 0, 1);
	demo_trainer *t = NULL;
	fdn_model *m, *out = NULL;
	fdn_buf metrics = FDN_BUF_INIT;
	uint64_t n = 0;
	int k;

	(void)state;
	DEMO_OK(demo_trainer_new(&t));
	for (k = 0; k < 5; k++) {
		const char *expect = DEMO_TENSOR_WEIGHT;

		OK(fdn_model_new(&m));
		switch (k) {
		case 0: /* wrong shape */
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2, s2x128,
				wb, sizeof(wb)));
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_BIAS, FDN_DTYPE_F32, 1, s2, b, sizeof(b)));
			break;
		case 1: /* wrong dtype */
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2, s2x256,
				w, sizeof(w)));
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_BIAS, FDN_DTYPE_F64, 1, s2, bd,
				sizeof(bd)));
			expect = DEMO_TENSOR_BIAS;
			break;
		case 2: /* missing bias */
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2, s2x256,
				w, sizeof(w)));
			expect = DEMO_TENSOR_BIAS;
			break;
		case 3: /* another tensor */
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2, s2x256,
				w, sizeof(w)));
			OK(fdn_model_add_tensor(m, DEMO_TENSOR_BIAS, FDN_DTYPE_F32, 1, s2, b, sizeof(b)));
			OK(fdn_model_add_tensor(m, "extra", FDN_DTYPE_F32, 1, s2, b, sizeof(b)));
			expect = "extra";
			break;
		default: /* transposed */
			{
				const uint64_t s256x2[2] = { 256, 2 };

				OK(fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2,
					s256x2, w, sizeof(w)));
				OK(fdn_model_add_tensor(m, DEMO_TENSOR_BIAS, FDN_DTYPE_F32, 1, s2, b,
					sizeof(b)));
			}
		}
		assert_int_equal(iface->train(t, m, regs[0], DEMO_COHORT_TRAIN, &c, &out, &n,
			&metrics), FDN_EINVALID);
		assert_null(out);
		if (!strstr(demo_error_message(), expect))
			fail_msg("case %d: '%s' does not name %s", k, demo_error_message(), expect);
		assert_int_equal(iface->evaluate(t, m, regs[0], DEMO_COHORT_TEST, &c, &n,
			&metrics), FDN_EINVALID);
		fdn_model_free(m);
	}
	assert_int_equal(demo_trainer_files_read(t), 0);
	/* A NaN in the global model. */
	{
		float nan_w[2 * 256] = { 0 };

		nan_w[17] = NAN;
		OK(fdn_model_new(&m));
		OK(fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2, s2x256, nan_w,
			sizeof(nan_w)));
		OK(fdn_model_add_tensor(m, DEMO_TENSOR_BIAS, FDN_DTYPE_F32, 1, s2, b, sizeof(b)));
		assert_int_equal(iface->train(t, m, regs[0], DEMO_COHORT_TRAIN, &c, &out, &n,
			&metrics), FDN_EINVALID);
		assert_non_null(strstr(demo_error_message(), "index 17"));
		fdn_model_free(m);
	}
	/* No configuration; a negative mu. */
	DEMO_OK(demo_model_init(&m, 1));
	assert_int_equal(iface->train(t, m, regs[0], DEMO_COHORT_TRAIN, NULL, &out, &n,
		&metrics), FDN_EINVALID);
	c.proximal_mu = -1;
	assert_int_equal(iface->train(t, m, regs[0], DEMO_COHORT_TRAIN, &c, &out, &n,
		&metrics), FDN_EINVALID);
	fdn_model_free(m);
	fdn_buf_dispose(&metrics);
	demo_trainer_free(t);
}

/* The cache does not bypass consent: a withdrawn patient drops out of
 * the next round although the features are cached. */
static void test_consent_respected(void **state)
{
	const fdn_trainer *iface = demo_trainer_iface();
	fdn_train_config c = config(1, 0, 0, 1);
	fdn_cohort_iter *it = NULL;
	fdn_cohort_member m;
	fdn_model *global = NULL, *out = NULL;
	demo_trainer *t = NULL;
	uint64_t n1 = 0, n2 = 0, reads;
	char patient[64];

	(void)state;
	DEMO_OK(demo_trainer_new(&t));
	DEMO_OK(demo_model_init(&global, 1));
	DEMO_OK(iface->train(t, global, regs[2], DEMO_COHORT_TRAIN, &c, &out, &n1, NULL));
	fdn_model_free(out);
	reads = demo_trainer_files_read(t);
	OK(fdn_cohort_iter_new(&it, regs[2], DEMO_COHORT_TRAIN, "test"));
	OK(fdn_cohort_iter_next(&m, it));
	snprintf(patient, sizeof(patient), "%s", m.patient);
	fdn_cohort_iter_free(it);
	OK(fdn_registry_withdraw(regs[2], patient, NULL, "test", 0));
	DEMO_OK(iface->train(t, global, regs[2], DEMO_COHORT_TRAIN, &c, &out, &n2, NULL));
	assert_int_equal(n2, n1 - 1);
	assert_int_equal(demo_trainer_files_read(t), reads);
	OK(fdn_registry_grant(regs[2], patient, NULL, "test"));
	fdn_model_free(out);
	fdn_model_free(global);
	demo_trainer_free(t);
}

/* A stored file that has gone is an error that names the instance, not
 * an example silently left out. */
static void test_missing_file(void **state)
{
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_train_config c = config(1, 0, 0, 1);
	fdn_registry *reg = NULL;
	fdn_cohort_iter *it = NULL;
	fdn_cohort_member m;
	fdn_model *global = NULL, *out = NULL;
	demo_trainer *t = NULL;
	demo_site site;
	char dir[600], uid[128];
	int rc;

	(void)state;
	demo_site_profile(&site, 0);
	snprintf(dir, sizeof(dir), "%s", path_in("missing-site"));
	DEMO_OK(demo_site_populate(NULL, dir, key, &site, 3, 0.0, SEED, NULL, NULL, NULL));
	OK(fdn_registry_open(&reg, dir, &o));
	OK(fdn_cohort_iter_new(&it, reg, DEMO_COHORT_TRAIN, "test"));
	OK(fdn_cohort_iter_next(&m, it));
	snprintf(uid, sizeof(uid), "%s", m.sop_instance_uid);
	assert_int_equal(unlink(m.locator), 0);
	fdn_cohort_iter_free(it);
	DEMO_OK(demo_trainer_new(&t));
	DEMO_OK(demo_model_init(&global, 1));
	rc = demo_train(&out, NULL, t, global, &reg, 1, DEMO_COHORT_TRAIN, &c);
	assert_true(rc == FDN_ENOTFOUND || rc == FDN_EIO);
	assert_null(out);
	assert_non_null(strstr(demo_error_message(), uid));
	fdn_model_free(global);
	demo_trainer_free(t);
	fdn_registry_free(reg);
}

static void test_central(void **state)
{
	demo_trainer *t = NULL;
	demo_metrics tr, te;
	fdn_model *m = NULL;

	(void)state;
	DEMO_OK(demo_trainer_new(&t));
	DEMO_OK(demo_train_central(&m, &tr, &te, t, regs, SITES, 10, 0, 3));
	assert_int_equal(tr.n, SITES * N_TRAIN);
	assert_int_equal(te.n, SITES * N_TEST);
	assert_true(te.accuracy >= 0.7);
	assert_int_equal(fdn_model_tensor_count(m), 2);
	fdn_model_free(m);
	demo_trainer_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synth_deterministic),
		cmocka_unit_test(test_synth_image),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_more_sites),
		cmocka_unit_test(test_phi_removed),
		cmocka_unit_test(test_populate_counts),
		cmocka_unit_test(test_populate_no_phi_on_disk),
		cmocka_unit_test(test_populate_refuses_used_registry),
		cmocka_unit_test(test_populate_originals_and_stop),
		cmocka_unit_test(test_model_init),
		cmocka_unit_test(test_train_learns),
		cmocka_unit_test(test_train_deterministic),
		cmocka_unit_test(test_fedprox),
		cmocka_unit_test(test_iface),
		cmocka_unit_test(test_bad_models),
		cmocka_unit_test(test_consent_respected),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_central),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
