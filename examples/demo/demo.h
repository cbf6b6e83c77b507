/*
 * The fednode demo: synthetic hospitals that train one model together.
 *
 * Each site is a registry filled with synthetic chest CT slices, each
 * with a realistic (invented) patient identity that is de-identified
 * before anything is stored.  Half the task is a finding to detect: a
 * small round nodule in a lung, present in some patients.  The sites
 * differ the way real hospitals do: scanner make and settings, noise,
 * calibration, how often and how large the finding is.  The trainer is
 * softmax regression on down-sampled pixels, small enough to run in
 * seconds, real enough that federated averaging has something to do.
 *
 * This header belongs to the demo (examples/demo/, the static library
 * fednode_demo); it is not part of libfednode's API.  Functions return
 * 0 or a negative fdn_error_code; demo_error_message() says why.
 *
 * Thread safety: a demo_trainer is used by one thread at a time; the
 * other functions may run on several threads with distinct arguments.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#ifndef FEDNODE_DEMO_H
#define FEDNODE_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include <fednode/fednode.h>

/* Image geometry and the model's shape. */
#define DEMO_IMAGE_SIZE 64          /* rows = columns of every slice */
#define DEMO_POOL 4                 /* average-pooling factor */
#define DEMO_GRID (DEMO_IMAGE_SIZE / DEMO_POOL)
#define DEMO_FEATURES (DEMO_GRID * DEMO_GRID)   /* 256 */
#define DEMO_CLASSES 2              /* 0 = "none", 1 = "nodule" */

/* The HU window the features see, scaled to [0, 1]: a lung window, so
 * that soft tissue and bone saturate and the lungs keep their detail.
 * The trainer's features are this, average-pooled DEMO_POOL×DEMO_POOL,
 * minus the same for a fixed average patient (the "atlas"): centred
 * inputs keep SGD well conditioned. */
#define DEMO_WINDOW_LOW (-1000.0)
#define DEMO_WINDOW_HIGH (-400.0)

/* Names the demo gives the registry. */
#define DEMO_COHORT_TRAIN "demo-train"
#define DEMO_COHORT_TEST "demo-test"
#define DEMO_LABEL_FINDING "finding"   /* "nodule" | "none" */
#define DEMO_LABEL_SPLIT "split"       /* "train" | "test" */

/* The last error of a demo function on this thread: a sentence that
 * says what failed (with the library's message when the library
 * failed).  Never NULL; valid until the next demo call on the thread. */
const char *demo_error_message(void);

/* ------------------------------------------------------------------ */
/* Sites */

/* One hospital: its scanner, its patients, its image quality.  Strings
 * are static (built-in profiles) or the caller's. */
typedef struct demo_site {
	unsigned int index;            /* from 0; also seeds the site's data */
	const char *institution;       /* InstitutionName */
	const char *address;           /* InstitutionAddress */
	const char *city;              /* where the patients live */
	const char *manufacturer;
	const char *model_name;        /* ManufacturerModelName */
	const char *station;           /* StationName */
	const char *kernel;            /* ConvolutionKernel */
	double kvp;
	double slice_thickness;        /* mm */
	int signed_pixels;             /* 1: int16 with intercept 0;
	                                  0: uint16 with intercept -1024 */
	double prevalence;             /* fraction of patients with a nodule */
	double noise_hu;               /* σ of the pixel noise */
	double offset_hu;              /* calibration offset of the scanner */
	double contrast_min, contrast_max; /* nodule HU above the lung */
	double radius_min, radius_max; /* nodule radius in pixels */
} demo_site;

/* Fills @p out with the built-in profile of site @p index: sites 0, 1
 * and 2 are three different hospitals (nodule prevalence 0.3, 0.5 and
 * 0.7); later indexes reuse those three with other names and slightly
 * different image quality. */
void demo_site_profile(demo_site *out, unsigned int index);

/* ------------------------------------------------------------------ */
/* Synthetic studies */

/* What the generator put in a study: the ground truth. */
typedef struct demo_truth {
	int nodule;                    /* 1 when the slice shows a nodule */
	double x, y, radius, contrast; /* its centre (column, row), size, HU */
	int test;                      /* 1 when the patient is in the test split */
} demo_truth;

/* Whether patient @p patient of a site is in the test split: every
 * 1/test_fraction-th patient, so that exactly floor(n · test_fraction)
 * of the first n patients are, whatever n is. */
int demo_is_test_patient(unsigned int patient, double test_fraction);

/*
 * Builds the original, identified study of patient @p patient of
 * @p site: one CT Image Storage instance (explicit VR little endian,
 * 64×64 16-bit axial slice with Rescale Slope/Intercept) with a full,
 * invented identity (name, IDs, birth date, address, physicians,
 * dates, institution).  Deterministic: the same (@p seed, site index,
 * patient) gives the same bytes.
 * @param out receives the dataset; free it with fdn_dataset_free().
 * @param truth optional: what the image shows (truth->test is 0).
 */
int demo_synth_study(fdn_dataset **out, demo_truth *truth, const demo_site *site,
	uint64_t seed, unsigned int patient);

/* ------------------------------------------------------------------ */
/* Populating a site's registry */

typedef struct demo_populate_stats {
	uint64_t patients, train, test, nodules;
	double seconds;
} demo_populate_stats;

/*
 * Fills the registry in folder @p registry_dir (created if absent; it
 * must hold no instance yet: FDN_ECONFLICT otherwise) with
 * @p n_patients studies of @p site: each is generated in memory,
 * de-identified with the Basic Profile and the site key @p key
 * (FDN_DEID_KEY_BYTES bytes), checked with fdn_deid_verify() (a leak
 * is FDN_EPHI and nothing is committed), added in one batch, and
 * labelled on its (pseudonymous) study with "finding" = "nodule" |
 * "none" and "split" = "train" | "test".  Then creates the cohorts
 * "demo-train" and "demo-test".
 *
 * Nothing identifying is written anywhere, unless @p originals_dir is
 * given: the original files then go there as patient-NNNN.dcm (real
 * PHI in a real deployment; for looking at only).
 *
 * @param progress optional; stage "demo.populate", one item per
 *        patient; a non-zero return abandons the batch and is returned.
 * @param stats optional.
 */
int demo_site_populate(demo_populate_stats *stats, const char *registry_dir,
	const unsigned char *key, const demo_site *site, unsigned int n_patients,
	double test_fraction, uint64_t seed, const char *originals_dir,
	fdn_progress_cb progress, void *payload);

/* ------------------------------------------------------------------ */
/* The model and the trainer */

/* Tensor names of the model. */
#define DEMO_TENSOR_WEIGHT "classifier.weight"   /* F32 [2, 256] */
#define DEMO_TENSOR_BIAS "classifier.bias"       /* F32 [2] */

/* The initial model: weights drawn from N(0, 0.01²) with @p seed, bias
 * 0, and metadata that describe the features.  Free with fdn_model_free(). */
int demo_model_init(fdn_model **out, uint64_t seed);

/* Metrics of a training or an evaluation. */
typedef struct demo_metrics {
	uint64_t n;                    /* examples */
	double loss;                   /* mean cross-entropy */
	double accuracy;               /* fraction classified right */
	double sensitivity;            /* of the nodules found; NaN if none */
	double specificity;            /* of the normals called normal; NaN if none */
} demo_metrics;

/* A trainer: the feature cache of every study it has read (by content
 * hash, so it holds across rounds, cohorts and registries while the
 * cohort itself is iterated every time: consent is checked at each use). */
typedef struct demo_trainer demo_trainer;

int demo_trainer_new(demo_trainer **out);
void demo_trainer_free(demo_trainer *t);

/* Studies read from storage so far (cache misses). */
uint64_t demo_trainer_files_read(const demo_trainer *t);

/*
 * The fdn_trainer vtable for libfednode's client; its payload is a
 * demo_trainer.  Configuration comes from fdn_train_config:
 * local_epochs (0 = 1), learning_rate (<= 0: 0.5), proximal_mu, seed,
 * and from extra_json {"batch_size": N} (default 16).
 */
const fdn_trainer *demo_trainer_iface(void);

/* Makes the vtable's evaluate use cohort @p cohort (e.g. the test split)
 * instead of the one the client trains on; NULL or "" undoes it. */
int demo_trainer_set_eval_cohort(demo_trainer *t, const char *cohort);

/*
 * Trains from @p global on cohort @p cohort pooled over @p n_regs
 * registries (one registry is a site's local training; several are the
 * centralised baseline): @p config->local_epochs epochs of minibatch
 * SGD on the cross-entropy, plus the FedProx term μ/2·‖w − w_global‖²
 * when @p config->proximal_mu > 0.  The examples are shuffled with
 * @p config->seed: the same inputs give a bit-identical model.
 * @param metrics optional: loss and accuracy of the new model on the
 *        training examples.
 * @return 0; FDN_EINVALID (a model that is not this demo's: the message
 *         names the tensor; an empty cohort; a member without a
 *         "finding" label; bad config); the library's errors.
 */
int demo_train(fdn_model **out, demo_metrics *metrics, demo_trainer *t,
	const fdn_model *global, fdn_registry *const *regs, size_t n_regs,
	const char *cohort, const fdn_train_config *config);

/* Evaluates @p model on cohort @p cohort pooled over @p n_regs
 * registries.  An empty cohort gives n = 0 and NaN metrics (through
 * the vtable: 0 examples and "{}").  @return as demo_train(). */
int demo_evaluate(demo_metrics *out, demo_trainer *t, const fdn_model *model,
	fdn_registry *const *regs, size_t n_regs, const char *cohort);

/*
 * The centralised baseline: a model from demo_model_init(@p model_seed)
 * trained for @p epochs on the "demo-train" cohorts of all @p regs
 * pooled, then evaluated on their pooled "demo-test" cohorts.
 * @param out optional: receives the trained model.
 */
int demo_train_central(fdn_model **out, demo_metrics *train_metrics,
	demo_metrics *test_metrics, demo_trainer *t, fdn_registry *const *regs,
	size_t n_regs, unsigned int epochs, double learning_rate, uint64_t seed);

#endif
