/*
 * libfednode: aggregation strategies: names, options and their defaults.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>
#include <string.h>

#include "fedavg/fedavg_private.h"

static const char *const names[] = {
	[FDN_STRATEGY_FEDAVG] = "fedavg",
	[FDN_STRATEGY_FEDAVGM] = "fedavgm",
	[FDN_STRATEGY_FEDADAGRAD] = "fedadagrad",
	[FDN_STRATEGY_FEDADAM] = "fedadam",
	[FDN_STRATEGY_FEDYOGI] = "fedyogi",
	[FDN_STRATEGY_FEDPROX] = "fedprox",
	[FDN_STRATEGY_MEDIAN] = "median",
	[FDN_STRATEGY_TRIMMED_MEAN] = "trimmed-mean",
};

#define NSTRATEGIES (sizeof(names) / sizeof(names[0]))

const char *fdn_strategy_name(int strategy)
{
	return strategy > 0 && (size_t)strategy < NSTRATEGIES ? names[strategy] : NULL;
}

int fdn_strategy_from_name(int *out, const char *name)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(name, "name");
	for (size_t i = 1; i < NSTRATEGIES; i++) {
		if (strcmp(names[i], name) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
		"unknown strategy '%.64s' (fedavg, fedavgm, fedadagrad, fedadam, "
		"fedyogi, fedprox, median, trimmed-mean)", name);
}

int fdn_strategy_options_init(fdn_strategy_options *opts, unsigned int version)
{
	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_STRATEGY_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_strategy_options: unsupported version %u (this library knows up to %u)",
			version, (unsigned)FDN_STRATEGY_OPTIONS_VERSION);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

bool fdn_fedavg__has_m(int strategy)
{
	return strategy == FDN_STRATEGY_FEDAVGM || strategy == FDN_STRATEGY_FEDADAM ||
		strategy == FDN_STRATEGY_FEDYOGI;
}

bool fdn_fedavg__has_v(int strategy)
{
	return strategy == FDN_STRATEGY_FEDADAGRAD || strategy == FDN_STRATEGY_FEDADAM ||
		strategy == FDN_STRATEGY_FEDYOGI;
}

bool fdn_fedavg__is_robust(int strategy)
{
	return strategy == FDN_STRATEGY_MEDIAN || strategy == FDN_STRATEGY_TRIMMED_MEAN;
}

static bool is_adaptive(int strategy)
{
	return strategy == FDN_STRATEGY_FEDADAGRAD || strategy == FDN_STRATEGY_FEDADAM ||
		strategy == FDN_STRATEGY_FEDYOGI;
}

/* 0 means "the default"; otherwise the value must be finite and in range. */
static int pick(double *field, double dflt, double lo, bool lo_open, double hi,
	bool hi_open, const char *what)
{
	double v = *field;

	if (v == 0) {
		*field = dflt;
		return 0;
	}
	if (!isfinite(v) || v < lo || (lo_open && v == lo) || v > hi || (hi_open && v == hi))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"strategy options: %s = %g is out of range %s%g, %g%s", what, v,
			lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
	return 0;
}

int fdn_fedavg__resolve_options(fdn_strategy_options *out,
	const fdn_strategy_options *in)
{
	fdn_strategy_options o = FDN_STRATEGY_OPTIONS_INIT;
	int rc;

	FDN__CHECK_VERSION(in, FDN_STRATEGY_OPTIONS_VERSION, "fdn_strategy_options");
	if (in) {
		/* Version 1 is every field there is; a later version appends
		 * fields, copied here only when in->version covers them. */
		o = *in;
		o.version = FDN_STRATEGY_OPTIONS_VERSION;
	}
	if (o.strategy == 0)
		o.strategy = FDN_STRATEGY_FEDAVG;
	if (!fdn_strategy_name(o.strategy))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"strategy options: unknown strategy %d", o.strategy);
	if ((rc = pick(&o.server_lr, is_adaptive(o.strategy) ? 0.1 : 1.0, 0, true,
			1e6, false, "server_lr")) < 0 ||
	    (rc = pick(&o.momentum, 0.9, 0, false, 1, true, "momentum")) < 0 ||
	    (rc = pick(&o.beta1, 0.9, 0, false, 1, true, "beta1")) < 0 ||
	    (rc = pick(&o.beta2, 0.99, 0, false, 1, true, "beta2")) < 0 ||
	    (rc = pick(&o.tau, 1e-3, 0, true, 1e6, false, "tau")) < 0 ||
	    (rc = pick(&o.trim, 0.1, 0, false, 0.5, true, "trim")) < 0 ||
	    (rc = pick(&o.proximal_mu, 0, 0, false, 1e6, false, "proximal_mu")) < 0)
		return rc;
	*out = o;
	return 0;
}
