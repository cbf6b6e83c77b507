/*
 * libfednode: the cohort filter language (registry.h, "Cohorts") parsed
 * by recursive descent into parameterized SQL.
 *
 * The SQL produced holds only column names taken from the fixed table
 * below, operators, parentheses and numbered parameters: no byte of the
 * user's input is ever copied into SQL text, so a value can only ever be
 * matched as data.
 *
 * Semantics worth knowing (doc/registry.md repeats them):
 *  - study_date values are 'YYYYMMDD' or 'YYYY-MM-DD' (normalised to the
 *    DICOM form, which then compares correctly as text);
 *  - age compares in years: the DICOM AS of the study ('061Y', '006M',
 *    '010W', '100D') is converted to years (months / 12, weeks / 52.1775,
 *    days / 365.25); a value is a number of years or an AS string;
 *    a study without a valid age matches no age comparison;
 *  - label.<key> compares the effective label of the instance: the
 *    instance's own, else its series', else its study's (the most
 *    specific wins, as in fdn_cohort_member.labels_json); labels are text;
 *    an instance without the label matches no comparison on it (so
 *    `NOT label.k = 'v'` includes it, `label.k != 'v'` does not);
 *  - rows, columns, frames take numbers; the other fields take strings;
 *  - an empty filter selects every instance.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fednode/registry.h"
#include "core/core_private.h"
#include "registry/cohort_private.h"
#include "registry/registry_private.h"

typedef enum field_kind {
	FIELD_TEXT,
	FIELD_NUMBER,
	FIELD_DATE,
	FIELD_AGE,
	FIELD_LABEL
} field_kind;

typedef struct field_def {
	const char *name;
	const char *column; /* SQL expression: fixed text only */
	field_kind kind;
} field_def;

/* study.age_years holds the years of the study's DICOM AS value (NULL
 * when malformed or empty), computed once at insert by
 * fdn_registry__age_years(): converting the text for every row made age
 * filters the slowest of all. */
#define AGE_YEARS_SQL "st.age_years"

static const field_def fields[] = {
	{ "modality", "se.modality", FIELD_TEXT },
	{ "body_part", "se.body_part", FIELD_TEXT },
	{ "manufacturer", "se.manufacturer", FIELD_TEXT },
	{ "series_description", "se.description", FIELD_TEXT },
	{ "study_date", "st.study_date", FIELD_DATE },
	{ "study_description", "st.description", FIELD_TEXT },
	{ "age", AGE_YEARS_SQL, FIELD_AGE },
	{ "sex", "p.sex", FIELD_TEXT },
	{ "sop_class", "i.sop_class", FIELD_TEXT },
	{ "rows", "i.\"rows\"", FIELD_NUMBER },
	{ "columns", "i.\"columns\"", FIELD_NUMBER },
	{ "frames", "i.frames", FIELD_NUMBER },
};

static const field_def label_field = { "label", NULL, FIELD_LABEL };

typedef enum tok_kind {
	TOK_END,
	TOK_IDENT,   /* names and keywords */
	TOK_STRING,
	TOK_NUMBER,
	TOK_OP,      /* = != < <= > >= */
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_COMMA,
	TOK_BAD      /* a character that starts no token */
} tok_kind;

typedef struct token {
	tok_kind kind;
	size_t start, len; /* in the source */
	char *text;        /* TOK_STRING: the decoded value (owned) */
} token;

typedef struct parser {
	const char *src;
	size_t len, pos;
	token tok;
	int depth;
	int column; /* of the error */
	fdn_filter__sql *out;
} parser;

/* 1-based column in characters (UTF-8 continuation bytes do not count). */
static int column_of(const parser *p, size_t offset)
{
	int col = 1;

	for (size_t i = 0; i < offset && i < p->len; i++)
		if (((unsigned char)p->src[i] & 0xC0) != 0x80)
			col++;
	return col;
}

static void describe(char *buf, size_t size, const parser *p, const token *t)
{
	int n = t->len > 32 ? 32 : (int)t->len;
	const char *s = p->src + t->start;

	switch (t->kind) {
	case TOK_END:
		snprintf(buf, size, "end of filter");
		break;
	case TOK_STRING:
		snprintf(buf, size, "string %.*s%s", n, s, t->len > 32 ? "..." : "");
		break;
	case TOK_NUMBER:
		snprintf(buf, size, "number %.*s", n, s);
		break;
	default:
		snprintf(buf, size, "'%.*s%s'", n, s, t->len > 32 ? "..." : "");
		break;
	}
}

static int fail_at(parser *p, size_t offset, const char *fmt, ...) FDN__PRINTF(3, 4);

static int fail_at(parser *p, size_t offset, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	p->column = column_of(p, offset);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
		"filter column %d: %s", p->column, msg);
}

static int expected(parser *p, const char *what)
{
	char found[96];

	describe(found, sizeof(found), p, &p->tok);
	return fail_at(p, p->tok.start, "expected %s, found %s", what, found);
}

static bool is_ident_start(int c)
{
	return isalpha(c) || c == '_';
}

static bool is_ident_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/* Reads a quoted string starting at p->pos ('' is one quote). */
static int lex_string(parser *p)
{
	size_t i = p->pos + 1, n = 0;
	char *text = fdn__malloc(p->len - p->pos + 1);

	if (!text)
		return fdn__error_oom();
	for (;;) {
		if (i >= p->len) {
			fdn__free(text);
			return fail_at(p, p->pos,
				"unterminated string (expected a closing ')");
		}
		if (p->src[i] == '\'') {
			if (i + 1 < p->len && p->src[i + 1] == '\'') {
				text[n++] = '\'';
				i += 2;
				continue;
			}
			i++;
			break;
		}
		text[n++] = p->src[i++];
	}
	text[n] = '\0';
	p->tok.kind = TOK_STRING;
	p->tok.text = text;
	p->tok.len = i - p->pos;
	p->pos = i;
	return 0;
}

static void lex_number(parser *p)
{
	size_t i = p->pos;

	if (p->src[i] == '-')
		i++;
	while (i < p->len && isdigit((unsigned char)p->src[i]))
		i++;
	if (i + 1 < p->len && p->src[i] == '.' && isdigit((unsigned char)p->src[i + 1])) {
		i++;
		while (i < p->len && isdigit((unsigned char)p->src[i]))
			i++;
	}
	p->tok.kind = TOK_NUMBER;
	p->tok.len = i - p->pos;
	p->pos = i;
}

static int next(parser *p)
{
	const char *s = p->src;
	int c;

	fdn__free(p->tok.text);
	p->tok.text = NULL;
	while (p->pos < p->len && isspace((unsigned char)s[p->pos]))
		p->pos++;
	p->tok.start = p->pos;
	p->tok.len = 1;
	if (p->pos >= p->len) {
		p->tok.kind = TOK_END;
		p->tok.len = 0;
		return 0;
	}
	c = (unsigned char)s[p->pos];
	if (c == '\'')
		return lex_string(p);
	if (isdigit(c) || (c == '-' && p->pos + 1 < p->len &&
			   isdigit((unsigned char)s[p->pos + 1]))) {
		lex_number(p);
		return 0;
	}
	if (is_ident_start(c)) {
		size_t i = p->pos;

		while (i < p->len && is_ident_char((unsigned char)s[i]))
			i++;
		p->tok.kind = TOK_IDENT;
		p->tok.len = i - p->pos;
		p->pos = i;
		return 0;
	}
	p->tok.kind = TOK_OP;
	if (c == '=' || c == '<' || c == '>' || c == '!') {
		if (p->pos + 1 < p->len && s[p->pos + 1] == '=' && c != '=')
			p->tok.len = 2;
		else if (c == '!')
			p->tok.kind = TOK_BAD;
	} else if (c == '(') {
		p->tok.kind = TOK_LPAREN;
	} else if (c == ')') {
		p->tok.kind = TOK_RPAREN;
	} else if (c == ',') {
		p->tok.kind = TOK_COMMA;
	} else {
		p->tok.kind = TOK_BAD;
		/* Show a whole UTF-8 character, not a lone lead byte. */
		while (p->pos + p->tok.len < p->len &&
		       ((unsigned char)s[p->pos + p->tok.len] & 0xC0) == 0x80)
			p->tok.len++;
	}
	p->pos += p->tok.len;
	return 0;
}

/* ASCII-only, locale-independent: keywords and field names are ASCII. */
static bool ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
			return false;
	return true;
}

static bool is_keyword(const parser *p, const char *kw)
{
	size_t n = strlen(kw);

	return p->tok.kind == TOK_IDENT && p->tok.len == n &&
		ascii_ncaseeq(p->src + p->tok.start, kw, n);
}

static bool tok_is(const parser *p, const char *text)
{
	size_t n = strlen(text);

	return p->tok.len == n && memcmp(p->src + p->tok.start, text, n) == 0;
}

static int emit(parser *p, const char *sql)
{
	return fdn_buf__puts(&p->out->sql, sql);
}

static int push_value(parser *p, fdn_filter__value v, size_t *index)
{
	fdn_filter__sql *o = p->out;

	if (o->count >= FDN_FILTER__MAX_VALUES) {
		fdn__free(v.text);
		return fail_at(p, p->tok.start, "too many values (at most %d)",
			FDN_FILTER__MAX_VALUES);
	}
	if (o->count == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		fdn_filter__value *nv = fdn__reallocarray(o->values, cap, sizeof(*nv));

		if (!nv) {
			fdn__free(v.text);
			return fdn__error_oom();
		}
		o->values = nv;
		o->cap = cap;
	}
	o->values[o->count++] = v;
	*index = o->count;
	return 0;
}

static int push_text(parser *p, const char *text, size_t *index)
{
	fdn_filter__value v = { true, false, fdn__strdup(text), 0, 0.0 };

	if (!v.text)
		return fdn__error_oom();
	return push_value(p, v, index);
}

double fdn_registry__age_years(const char *s)
{
	double n;

	if (strlen(s) != 4 || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
		return -1;
	n = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	switch (s[3]) {
	case 'Y': return n;
	case 'M': return n / 12.0;
	case 'W': return n / 52.1775;
	case 'D': return n / 365.25;
	default: return -1;
	}
}

/* 'YYYYMMDD' or 'YYYY-MM-DD' into out as YYYYMMDD; false otherwise. */
static bool normalise_date(char out[9], const char *s)
{
	size_t n = strlen(s), j = 0;

	if (n != 8 && !(n == 10 && s[4] == '-' && s[7] == '-'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (n == 10 && (i == 4 || i == 7))
			continue;
		if (!isdigit((unsigned char)s[i]))
			return false;
		out[j++] = s[i];
	}
	out[8] = '\0';
	return true;
}

/* Parses one value for @p f, pushes it and emits its parameter. */
static int value(parser *p, const field_def *f)
{
	fdn_filter__value v = { false, false, NULL, 0, 0.0 };
	char param[32], date[9];
	size_t index;
	int rc;

	if (p->tok.kind == TOK_STRING) {
		switch (f->kind) {
		case FIELD_NUMBER:
			return expected(p, "a number");
		case FIELD_DATE:
			if (!normalise_date(date, p->tok.text))
				return expected(p, "a date 'YYYYMMDD' or 'YYYY-MM-DD'");
			rc = push_text(p, date, &index);
			break;
		case FIELD_AGE:
			v.is_real = true;
			v.real = fdn_registry__age_years(p->tok.text);
			if (v.real < 0)
				return expected(p, "an age in years or as 'nnnY', 'nnnM', 'nnnW' or 'nnnD'");
			rc = push_value(p, v, &index);
			break;
		default:
			rc = push_text(p, p->tok.text, &index);
			break;
		}
	} else if (p->tok.kind == TOK_NUMBER) {
		char num[64];

		if (f->kind != FIELD_NUMBER && f->kind != FIELD_AGE)
			return expected(p, "a quoted string");
		if (p->tok.len >= sizeof(num))
			return fail_at(p, p->tok.start, "number too long");
		memcpy(num, p->src + p->tok.start, p->tok.len);
		num[p->tok.len] = '\0';
		errno = 0;
		if (memchr(num, '.', p->tok.len)) {
			v.is_real = true;
			v.real = strtod(num, NULL);
		} else {
			v.integer = strtoll(num, NULL, 10);
		}
		if (errno == ERANGE)
			return fail_at(p, p->tok.start, "number out of range");
		rc = push_value(p, v, &index);
	} else {
		return expected(p, f->kind == FIELD_NUMBER ? "a number" : "a value");
	}
	if (rc < 0)
		return rc;
	snprintf(param, sizeof(param), "?%zu", index);
	if ((rc = emit(p, param)) < 0)
		return rc;
	return next(p);
}

/* Emits the SQL expression of the field; for a label, pushes its key. */
static int field_expr(parser *p, const field_def *f, size_t key_index)
{
	(void)key_index;
	/* A label is compared inside the subquery of emit_label(). */
	return emit(p, f->kind == FIELD_LABEL ? "l.value" : f->column);
}

static bool label_key_valid(const char *key, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)key[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

static int resolve_field(parser *p, const field_def **out, size_t *key_index)
{
	const char *name = p->src + p->tok.start;
	size_t len = p->tok.len;
	int rc;

	if (p->tok.kind != TOK_IDENT)
		return expected(p, "a field name");
	if (len > 6 && ascii_ncaseeq(name, "label.", 6)) {
		char key[65];

		if (!label_key_valid(name + 6, len - 6))
			return fail_at(p, p->tok.start + 6,
				"expected a label key of [A-Za-z0-9_.-], at most 64 bytes");
		memcpy(key, name + 6, len - 6);
		key[len - 6] = '\0';
		if ((rc = push_text(p, key, key_index)) < 0)
			return rc;
		*out = &label_field;
		return next(p);
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strlen(fields[i].name) == len &&
		    ascii_ncaseeq(fields[i].name, name, len)) {
			*out = &fields[i];
			*key_index = 0;
			return next(p);
		}
	}
	return expected(p, "a field name");
}

/* Comparisons on a study without a valid age are made false rather than
 * NULL, so that NOT is the complement (as for labels). */
static bool nullable(const field_def *f)
{
	return f->kind == FIELD_AGE;
}

static int cmp_in(parser *p, const field_def *f, size_t key)
{
	int rc;

	if ((rc = next(p)) < 0)
		return rc;
	if (p->tok.kind != TOK_LPAREN)
		return expected(p, "'('");
	if ((rc = next(p)) < 0 || (rc = field_expr(p, f, key)) < 0 ||
	    (rc = emit(p, " IN (")) < 0)
		return rc;
	for (;;) {
		if ((rc = value(p, f)) < 0)
			return rc;
		if (p->tok.kind == TOK_RPAREN)
			break;
		if (p->tok.kind != TOK_COMMA)
			return expected(p, "',' or ')'");
		if ((rc = next(p)) < 0 || (rc = emit(p, ", ")) < 0)
			return rc;
	}
	if ((rc = emit(p, ")")) < 0)
		return rc;
	return next(p);
}

static int cmp_between(parser *p, const field_def *f, size_t key)
{
	int rc;

	if ((rc = next(p)) < 0 || (rc = field_expr(p, f, key)) < 0 ||
	    (rc = emit(p, " BETWEEN ")) < 0 || (rc = value(p, f)) < 0)
		return rc;
	if (!is_keyword(p, "AND"))
		return expected(p, "AND");
	if ((rc = next(p)) < 0 || (rc = emit(p, " AND ")) < 0)
		return rc;
	return value(p, f);
}

/* The comparison after the field name, with the field's expression. */
static int cmp_body(parser *p, const field_def *f, size_t key)
{
	static const char *const ops[] = { "=", "!=", "<", "<=", ">", ">=" };
	const char *op = NULL;
	int rc;

	if (is_keyword(p, "IN"))
		return cmp_in(p, f, key);
	if (is_keyword(p, "BETWEEN"))
		return cmp_between(p, f, key);
	if (p->tok.kind == TOK_OP)
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (tok_is(p, ops[i]))
				op = ops[i];
	if (!op)
		return expected(p, "an operator (=, !=, <, <=, >, >=, IN, BETWEEN)");
	if ((rc = field_expr(p, f, key)) < 0 || (rc = emit(p, " ")) < 0 ||
	    (rc = emit(p, op)) < 0 || (rc = emit(p, " ")) < 0 ||
	    (rc = next(p)) < 0)
		return rc;
	return value(p, f);
}

/*
 * A label comparison selects the instances whose effective label (the
 * instance's, else the series', else the study's) matches, as a
 * non-correlated subquery: SQLite computes it once from the label index
 * and, when it is a top-level AND term, drives the whole query from it
 * instead of evaluating three lookups for every instance.  @p c is the
 * comparison on l.value, repeated for the three levels.  cohort.c
 * recognises a label comparison by the text "FROM label l" and then
 * lets SQLite choose the join order (see FROM_LABEL there).
 */
static int emit_label(parser *p, const char *c, size_t k)
{
	char head[160], tail[800];
	int rc;

	snprintf(head, sizeof(head),
		"i.id IN (SELECT l.object_id FROM label l"
		" WHERE l.level = 2 AND l.key = ?%zu AND (", k);
	if ((rc = emit(p, head)) < 0 || (rc = emit(p, c)) < 0)
		return rc;
	snprintf(tail, sizeof(tail),
		") UNION ALL SELECT i2.id FROM label l JOIN instance i2 ON i2.series_id = l.object_id"
		" WHERE l.level = 1 AND l.key = ?%zu AND NOT EXISTS (SELECT 1 FROM label x"
		" WHERE x.level = 2 AND x.object_id = i2.id AND x.key = ?%zu) AND (",
		k, k);
	if ((rc = emit(p, tail)) < 0 || (rc = emit(p, c)) < 0)
		return rc;
	snprintf(tail, sizeof(tail),
		") UNION ALL SELECT i2.id FROM label l JOIN series s2 ON s2.study_id = l.object_id"
		" JOIN instance i2 ON i2.series_id = s2.id"
		" WHERE l.level = 0 AND l.key = ?%zu AND NOT EXISTS (SELECT 1 FROM label x"
		" WHERE x.level = 2 AND x.object_id = i2.id AND x.key = ?%zu)"
		" AND NOT EXISTS (SELECT 1 FROM label x"
		" WHERE x.level = 1 AND x.object_id = s2.id AND x.key = ?%zu) AND (",
		k, k, k);
	if ((rc = emit(p, tail)) < 0 || (rc = emit(p, c)) < 0)
		return rc;
	return emit(p, "))");
}

static int cmp(parser *p)
{
	const field_def *f = NULL;
	fdn_buf main_sql, c = FDN_BUF_INIT;
	size_t key = 0;
	int rc;

	if ((rc = resolve_field(p, &f, &key)) < 0)
		return rc;
	if (f->kind != FIELD_LABEL) {
		if (nullable(f) && (rc = emit(p, "COALESCE(")) < 0)
			return rc;
		if ((rc = cmp_body(p, f, key)) < 0)
			return rc;
		return nullable(f) ? emit(p, ", 0)") : 0;
	}
	/* Parse the comparison into its own buffer, then repeat it. */
	main_sql = p->out->sql;
	p->out->sql = c;
	rc = cmp_body(p, f, key);
	c = p->out->sql;
	p->out->sql = main_sql;
	if (rc == 0)
		rc = emit_label(p, c.ptr, key);
	fdn_buf_dispose(&c);
	return rc;
}

static int parse_or(parser *p);

static int enter(parser *p)
{
	if (++p->depth > FDN_FILTER__MAX_DEPTH)
		return fail_at(p, p->tok.start,
			"nested too deeply (at most %d parentheses and NOTs)",
			FDN_FILTER__MAX_DEPTH);
	return 0;
}

static int parse_not(parser *p)
{
	int rc;

	if (is_keyword(p, "NOT")) {
		if ((rc = enter(p)) < 0 || (rc = next(p)) < 0 ||
		    (rc = emit(p, "NOT (")) < 0 || (rc = parse_not(p)) < 0 ||
		    (rc = emit(p, ")")) < 0)
			return rc;
		p->depth--;
		return 0;
	}
	if (p->tok.kind == TOK_LPAREN) {
		if ((rc = enter(p)) < 0 || (rc = next(p)) < 0 ||
		    (rc = emit(p, "(")) < 0 || (rc = parse_or(p)) < 0)
			return rc;
		if (p->tok.kind != TOK_RPAREN)
			return expected(p, "AND, OR or ')'");
		p->depth--;
		if ((rc = emit(p, ")")) < 0)
			return rc;
		return next(p);
	}
	return cmp(p);
}

static int parse_and(parser *p)
{
	int rc;

	/* Each operand is parenthesised so that the SQL's grouping is the
	 * filter's whatever SQLite's own precedence is. */
	if ((rc = emit(p, "(")) < 0 || (rc = parse_not(p)) < 0 ||
	    (rc = emit(p, ")")) < 0)
		return rc;
	while (is_keyword(p, "AND")) {
		if ((rc = next(p)) < 0 || (rc = emit(p, " AND (")) < 0 ||
		    (rc = parse_not(p)) < 0 || (rc = emit(p, ")")) < 0)
			return rc;
	}
	return 0;
}

static int parse_or(parser *p)
{
	int rc;

	if ((rc = emit(p, "(")) < 0 || (rc = parse_and(p)) < 0 ||
	    (rc = emit(p, ")")) < 0)
		return rc;
	while (is_keyword(p, "OR")) {
		if ((rc = next(p)) < 0 || (rc = emit(p, " OR (")) < 0 ||
		    (rc = parse_and(p)) < 0 || (rc = emit(p, ")")) < 0)
			return rc;
	}
	return 0;
}

void fdn_filter__dispose(fdn_filter__sql *f)
{
	if (!f)
		return;
	fdn_buf_dispose(&f->sql);
	for (size_t i = 0; i < f->count; i++)
		fdn__free(f->values[i].text);
	fdn__free(f->values);
	f->values = NULL;
	f->count = f->cap = 0;
}

int fdn_filter__compile(fdn_filter__sql *out, int *column, const char *filter)
{
	parser p;
	int rc;

	if (column)
		*column = 0;
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(filter, "filter");
	memset(&p, 0, sizeof(p));
	p.src = filter;
	p.len = 0;
	while (p.len <= FDN_FILTER__MAX_LENGTH && filter[p.len])
		p.len++;
	p.out = out;
	if (p.len > FDN_FILTER__MAX_LENGTH) {
		p.len = FDN_FILTER__MAX_LENGTH;
		rc = fail_at(&p, FDN_FILTER__MAX_LENGTH,
			"filter longer than %d bytes", FDN_FILTER__MAX_LENGTH);
		goto done;
	}
	if ((rc = next(&p)) < 0)
		goto done;
	if (p.tok.kind == TOK_END) {
		rc = emit(&p, "1");
		goto done;
	}
	if ((rc = parse_or(&p)) < 0)
		goto done;
	if (p.tok.kind != TOK_END)
		rc = expected(&p, "AND, OR or end of filter");
done:
	fdn__free(p.tok.text);
	if (rc < 0) {
		if (column)
			*column = p.column;
		fdn_filter__dispose(out);
	}
	return rc;
}

int fdn_filter__bind(const fdn_filter__sql *f, sqlite3_stmt *stmt)
{
	for (size_t i = 0; i < f->count; i++) {
		const fdn_filter__value *v = &f->values[i];
		int idx = (int)i + 1, rc;

		if (v->is_text)
			rc = sqlite3_bind_text(stmt, idx, v->text, -1, SQLITE_STATIC);
		else if (v->is_real)
			rc = sqlite3_bind_double(stmt, idx, v->real);
		else
			rc = sqlite3_bind_int64(stmt, idx, v->integer);
		if (rc != SQLITE_OK)
			return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY,
				"filter: cannot bind value %d: %s", idx,
				sqlite3_errstr(rc));
	}
	return 0;
}

int fdn_registry_filter_check(int *column, const char *filter)
{
	fdn_filter__sql f = FDN_FILTER__SQL_INIT;
	int rc;

	if (column)
		*column = 0;
	FDN__CHECK_ARG(filter, "filter");
	rc = fdn_filter__compile(&f, column, filter);
	fdn_filter__dispose(&f);
	return rc;
}
