/*
 * libfednode: the cohort filter language compiled to parameterized SQL,
 * shared by filter.c and cohort.c.  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_REGISTRY_COHORT_PRIVATE_H
#define FDN_REGISTRY_COHORT_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "fednode/common.h"

/* Longest filter accepted, in bytes, and deepest nesting of parentheses
 * and NOT: both bound the recursion of the parser and the size of the
 * SQL handed to SQLite. */
#define FDN_FILTER__MAX_LENGTH (64 * 1024)
#define FDN_FILTER__MAX_DEPTH 64
/* Values one filter may bind; far below SQLite's 32766 variables. */
#define FDN_FILTER__MAX_VALUES 8192

/* The tables a compiled filter refers to, with the aliases its SQL uses:
 * i (instance), se (series), st (study), p (patient). */
#define FDN_FILTER__FROM \
	"instance i JOIN series se ON se.id = i.series_id" \
	" JOIN study st ON st.id = se.study_id" \
	" JOIN patient p ON p.id = st.patient_id"

/* Who may be used at all: consent granted and files not purged. */
#define FDN_FILTER__USABLE "p.consent = 'granted' AND i.purged = 0"

/* One value to bind, in parameter order (?1, ?2, ...). */
typedef struct fdn_filter__value {
	bool is_text;
	bool is_real;
	char *text;     /* is_text: owned, NUL-terminated */
	int64_t integer;
	double real;
} fdn_filter__value;

/* A compiled filter: a boolean SQL expression over FDN_FILTER__FROM made
 * of fixed column names, operators, parentheses and numbered parameters
 * only, plus the values to bind to those parameters. */
typedef struct fdn_filter__sql {
	fdn_buf sql;
	fdn_filter__value *values;
	size_t count, cap;
} fdn_filter__sql;

#define FDN_FILTER__SQL_INIT { FDN_BUF_INIT, NULL, 0, 0 }

/* Compiles @p filter into @p out (initialised with FDN_FILTER__SQL_INIT).
 * An empty (or blank) filter compiles to "1": every instance.  On a
 * syntax error returns FDN_EINVALID "filter column N: ..." and sets
 * *column (when not NULL) to N, 1-based, in characters; else *column is 0.
 * @p out is left empty on failure. */
int fdn_filter__compile(fdn_filter__sql *out, int *column, const char *filter);

/* Binds the values of @p f to @p stmt's parameters 1..count. */
int fdn_filter__bind(const fdn_filter__sql *f, sqlite3_stmt *stmt);

void fdn_filter__dispose(fdn_filter__sql *f);

#endif
