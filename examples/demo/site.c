/*
 * A demo site: synthetic studies, de-identified, verified, registered,
 * labelled, and split into a training and a test cohort.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "demo.h"
#include "demo_private.h"

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct populate {
	fdn_registry *reg;
	fdn_deid_profile *profile;
	const demo_site *site;
	const char *originals_dir;
	uint64_t seed;
	double test_fraction;
	demo_populate_stats st;
};

static int open_registry(fdn_registry **out, const char *dir)
{
	fdn_registry_options o;
	fdn_registry_stats rs;
	int rc;

	if ((rc = fdn_registry_options_init(&o, FDN_REGISTRY_OPTIONS_VERSION)) != 0)
		return demo__lib(rc, "registry options");
	o.create = 1;
	o.actor = "fednode-demo";
	if ((rc = fdn_registry_open(out, dir, &o)) != 0)
		return demo__lib(rc, "cannot open the registry");
	memset(&rs, 0, sizeof(rs));
	rs.version = FDN_REGISTRY_STATS_VERSION;
	if ((rc = fdn_registry_stats_get(&rs, *out)) != 0)
		return demo__lib(rc, "cannot read the registry's counts");
	/* Mixing demo data into a registry that holds anything else would
	 * put it into the demo's cohorts. */
	if (rs.instances > 0 || rs.cohorts > 0)
		return demo__fail(FDN_ECONFLICT, "registry '%s' is not empty (%llu instances, "
			"%llu cohorts): the demo fills a new registry", dir,
			(unsigned long long)rs.instances, (unsigned long long)rs.cohorts);
	return 0;
}

static int make_profile(fdn_deid_profile **out, const unsigned char *key)
{
	fdn_deid_options o;
	int rc;

	if ((rc = fdn_deid_options_init(&o, FDN_DEID_OPTIONS_VERSION)) != 0)
		return demo__lib(rc, "de-identification options");
	o.key = key; /* copied into guarded memory by the profile */
	if ((rc = fdn_deid_profile_new(out, &o)) != 0)
		return demo__lib(rc, "cannot create the de-identification profile");
	return 0;
}

/* Proof, for every study, that the de-identified copy holds none of the
 * original's identifying values. */
static int verify(const struct populate *p, const fdn_dataset *orig, const fdn_dataset *deid,
	unsigned int patient)
{
	fdn_deid_report *rep = NULL;
	int rc = fdn_deid_verify(&rep, p->profile, orig, deid);

	if (rc == FDN_EPHI) {
		const char *leak = fdn_deid_report_leak_count(rep) ?
			fdn_deid_report_leak(rep, 0) : "?";

		rc = demo__fail(FDN_EPHI, "patient %u: identifying data left after "
			"de-identification (%zu findings, first: %s)", patient,
			fdn_deid_report_leak_count(rep), leak);
	} else if (rc != 0) {
		rc = demo__lib(rc, "cannot verify the de-identification");
	}
	fdn_deid_report_free(rep);
	return rc;
}

static int write_original(const struct populate *p, const fdn_dataset *orig,
	unsigned int patient)
{
	char path[4096];
	int rc;

	if (snprintf(path, sizeof(path), "%s/patient-%04u.dcm", p->originals_dir, patient) >=
			(int)sizeof(path))
		return demo__fail(FDN_EINVALID, "originals folder path too long");
	if ((rc = fdn_dataset_write_file(orig, path, FDN_WRITE_DEFAULT)) != 0)
		return demo__lib(rc, "cannot write the original study");
	return 0;
}

/* Labels the de-identified study: its UID is the keyed replacement, so
 * it is read from the dataset rather than from the original. */
static int label(struct populate *p, const fdn_dataset *deid, const demo_truth *truth)
{
	fdn_buf uid = FDN_BUF_INIT;
	int rc;

	if ((rc = fdn_dataset_get_string(&uid, deid, "StudyInstanceUID")) != 0)
		return demo__lib(rc, "de-identified study without StudyInstanceUID");
	rc = fdn_registry_label(p->reg, FDN_LABEL_STUDY, uid.ptr, DEMO_LABEL_FINDING,
		truth->nodule ? "nodule" : "none");
	if (rc == 0)
		rc = fdn_registry_label(p->reg, FDN_LABEL_STUDY, uid.ptr, DEMO_LABEL_SPLIT,
			truth->test ? "test" : "train");
	fdn_buf_dispose(&uid);
	return rc ? demo__lib(rc, "cannot label the study") : 0;
}

static int add_patient(struct populate *p, unsigned int patient)
{
	fdn_dataset *orig = NULL, *deid = NULL;
	demo_truth truth;
	int rc;

	if ((rc = demo_synth_study(&orig, &truth, p->site, p->seed, patient)) != 0)
		return rc;
	truth.test = demo_is_test_patient(patient, p->test_fraction);
	if ((rc = fdn_dataset_clone(&deid, orig)) != 0) {
		rc = demo__lib(rc, "cannot copy the study");
	} else if ((rc = fdn_deid_apply(NULL, p->profile, deid)) != 0) {
		rc = demo__lib(rc, "cannot de-identify the study");
	} else if ((rc = verify(p, orig, deid, patient)) == 0 &&
			(!p->originals_dir || (rc = write_original(p, orig, patient)) == 0)) {
		if ((rc = fdn_registry_add(NULL, p->reg, deid, FDN_REGISTRY_ADD_DEFAULT)) != 0)
			rc = demo__lib(rc, "cannot register the study");
		else
			rc = label(p, deid, &truth);
	}
	fdn_dataset_free(deid);
	fdn_dataset_free(orig);
	if (rc == 0) {
		p->st.patients++;
		p->st.nodules += truth.nodule != 0;
		if (truth.test)
			p->st.test++;
		else
			p->st.train++;
	}
	return rc;
}

static int report(fdn_progress_cb cb, void *payload, uint64_t done, uint64_t total,
	double t0)
{
	fdn_progress pr;
	int rc;

	if (!cb)
		return 0;
	memset(&pr, 0, sizeof(pr));
	pr.version = FDN_PROGRESS_VERSION;
	pr.stage = "demo.populate";
	pr.items_done = done;
	pr.items_total = total;
	pr.elapsed = now_seconds() - t0;
	if ((rc = cb(&pr, payload)) != 0)
		return demo__fail(rc, "stopped by the progress callback");
	return 0;
}

static int fill(struct populate *p, unsigned int n_patients, fdn_progress_cb progress,
	void *payload, double t0)
{
	unsigned int i;
	int rc;

	if ((rc = fdn_registry_begin(p->reg)) != 0)
		return demo__lib(rc, "cannot start a batch");
	for (i = 0, rc = 0; i < n_patients && rc == 0; i++)
		if ((rc = add_patient(p, i)) == 0)
			rc = report(progress, payload, i + 1u, n_patients, t0);
	if (rc != 0) {
		fdn_registry_rollback(p->reg);
		return rc;
	}
	if ((rc = fdn_registry_commit(p->reg)) != 0)
		return demo__lib(rc, "cannot commit the batch");
	if ((rc = fdn_cohort_create(NULL, p->reg, DEMO_COHORT_TRAIN,
			"label." DEMO_LABEL_SPLIT " = 'train'")) != 0 ||
			(rc = fdn_cohort_create(NULL, p->reg, DEMO_COHORT_TEST,
			"label." DEMO_LABEL_SPLIT " = 'test'")) != 0)
		return demo__lib(rc, "cannot create the cohorts");
	return 0;
}

int demo_site_populate(demo_populate_stats *stats, const char *registry_dir,
	const unsigned char *key, const demo_site *site, unsigned int n_patients,
	double test_fraction, uint64_t seed, const char *originals_dir,
	fdn_progress_cb progress, void *payload)
{
	struct populate p;
	double t0 = now_seconds();
	int rc;

	if (!registry_dir || !key || !site)
		return demo__fail(FDN_EINVALID, "demo_site_populate: NULL argument");
	if (n_patients == 0 || !(test_fraction >= 0.0 && test_fraction < 1.0))
		return demo__fail(FDN_EINVALID, "demo_site_populate: need at least one patient "
			"and a test fraction in [0, 1)");
	if (originals_dir && mkdir(originals_dir, 0700) != 0 && errno != EEXIST)
		return demo__fail(FDN_EIO, "cannot create '%s': %s", originals_dir,
			strerror(errno));
	memset(&p, 0, sizeof(p));
	p.site = site;
	p.seed = seed;
	p.test_fraction = test_fraction;
	p.originals_dir = originals_dir;
	if ((rc = open_registry(&p.reg, registry_dir)) == 0 &&
			(rc = make_profile(&p.profile, key)) == 0)
		rc = fill(&p, n_patients, progress, payload, t0);
	fdn_deid_profile_free(p.profile);
	fdn_registry_free(p.reg);
	p.st.seconds = now_seconds() - t0;
	if (stats)
		*stats = p.st;
	return rc;
}
