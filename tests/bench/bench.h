/*
 * A small timing harness for the benchmarks: runs a body several times,
 * reports the median and the ratio against a baseline measured in the
 * same run.  Header-only so that each benchmark is one program.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_BENCH_H
#define FDN_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of @p n samples (sorts them). */
static inline double bench_median(double *samples, int n)
{
	qsort(samples, (size_t)n, sizeof(double), bench_cmp_double);
	return n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

/* Times fn(arg) @p reps times; returns the median seconds. */
static inline double bench_time(int reps, void (*fn)(void *), void *arg)
{
	double samples[64], t;
	int i;

	if (reps > 64)
		reps = 64;
	for (i = 0; i < reps; i++) {
		t = bench_now();
		fn(arg);
		samples[i] = bench_now() - t;
	}
	return bench_median(samples, reps);
}

/* One result line: name, median, rate, ratio to the baseline. */
static inline void bench_report(const char *name, double median_s,
	double units, const char *unit, double baseline_s)
{
	printf("%-28s median %10.6f s  %12.1f %s/s", name, median_s,
		units / median_s, unit);
	if (baseline_s > 0)
		printf("  x%.2f of baseline", median_s / baseline_s);
	printf("\n");
}

#endif
