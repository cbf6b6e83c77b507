/*
 * De-identification profiles: options, the guarded site key, and the
 * decision every element gets (Table E.1-1, options, site rules).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "deid_private.h"
#include "rules_private.h"

size_t fdn_deid_key_bytes(void)
{
	return FDN_DEID_KEY_BYTES;
}

int fdn_deid_options_init(fdn_deid_options *opts, unsigned int version)
{
	static const fdn_deid_options defaults = FDN_DEID_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_DEID_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_deid_options: unsupported version %u (this library knows up to %u)",
			version, (unsigned)FDN_DEID_OPTIONS_VERSION);
	*opts = defaults;
	opts->version = version;
	return 0;
}

/* The public flags and the table's option columns are in the same order;
 * the translation still goes bit by bit so that neither can drift. */
static unsigned int table_mask_of(unsigned int flags)
{
	static const struct { unsigned int flag; fdn_deid_option opt; } map[] = {
		{ FDN_DEID_RETAIN_SAFE_PRIVATE, FDN_DEID_OPT_RETAIN_SAFE_PRIVATE },
		{ FDN_DEID_RETAIN_UIDS, FDN_DEID_OPT_RETAIN_UIDS },
		{ FDN_DEID_RETAIN_DEVICE_IDENTITY, FDN_DEID_OPT_RETAIN_DEVICE_IDENTITY },
		{ FDN_DEID_RETAIN_INSTITUTION_IDENTITY, FDN_DEID_OPT_RETAIN_INSTITUTION_IDENTITY },
		{ FDN_DEID_RETAIN_PATIENT_CHARACTERISTICS, FDN_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS },
		{ FDN_DEID_RETAIN_LONG_FULL_DATES, FDN_DEID_OPT_RETAIN_LONG_FULL_DATES },
		{ FDN_DEID_RETAIN_LONG_MODIFIED_DATES, FDN_DEID_OPT_RETAIN_LONG_MODIFIED_DATES },
		{ FDN_DEID_CLEAN_DESCRIPTORS, FDN_DEID_OPT_CLEAN_DESCRIPTORS },
		{ FDN_DEID_CLEAN_STRUCTURED_CONTENT, FDN_DEID_OPT_CLEAN_STRUCTURED_CONTENT },
		{ FDN_DEID_CLEAN_GRAPHICS, FDN_DEID_OPT_CLEAN_GRAPHICS },
	};
	unsigned int mask = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (flags & map[i].flag)
			mask |= FDN_DEID_OPT_BIT(map[i].opt);
	return mask;
}

static int check_options(const fdn_deid_options *opts)
{
	const unsigned int both = FDN_DEID_RETAIN_LONG_FULL_DATES |
		FDN_DEID_RETAIN_LONG_MODIFIED_DATES;

	if (opts->options & ~((1u << FDN_DEID_OPT_COUNT) - 1u))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification options: unknown option bits 0x%x",
			opts->options & ~((1u << FDN_DEID_OPT_COUNT) - 1u));
	if ((opts->options & both) == both)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification options: Retain Longitudinal Temporal Information "
			"with Full Dates and with Modified Dates exclude each other");
	if (!opts->key)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification options: a site key (%d bytes) is required",
			FDN_DEID_KEY_BYTES);
	return 0;
}

static int copy_key(fdn_deid_profile *p, const unsigned char *key)
{
	p->key = sodium_malloc(FDN_DEID_KEY_BYTES);
	if (!p->key)
		return fdn__error_oom();
	memcpy(p->key, key, FDN_DEID_KEY_BYTES);
	/* Read-only from here on: a stray write faults instead of silently
	 * changing every pseudonym, and concurrent readers need no lock. */
	sodium_mprotect_readonly(p->key);
	return 0;
}

int fdn_deid_profile_new(fdn_deid_profile **out, const fdn_deid_options *opts)
{
	fdn_deid_profile *p;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(opts, "opts");
	*out = NULL;
	FDN__CHECK_VERSION(opts, FDN_DEID_OPTIONS_VERSION, "fdn_deid_options");
	if ((rc = fdn__check_init()) != 0 || (rc = check_options(opts)) != 0)
		return rc;
	p = fdn__calloc(1, sizeof(*p));
	if (!p)
		return fdn__error_oom();
	p->options = opts->options;
	p->table_mask = table_mask_of(opts->options);
	p->clean = opts->clean;
	p->clean_payload = opts->clean_payload;
	p->allow_burned_in = opts->allow_burned_in != 0;
	rc = copy_key(p, opts->key);
	if (rc == 0 && opts->rules_json)
		rc = fdn_deid__rules_parse(&p->rules, &p->rule_count, opts->rules_json);
	if (rc != 0) {
		fdn_deid_profile_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void fdn_deid_profile_free(fdn_deid_profile *profile)
{
	if (!profile)
		return;
	if (profile->key)
		sodium_free(profile->key);
	fdn__free(profile->rules);
	fdn__free(profile);
}

/* --- decisions ----------------------------------------------------------------- */

bool fdn_deid__vr_is_text(const char *vr)
{
	static const char text[] = "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT";

	return vr && vr[0] && vr[1] && !vr[2] && strstr(text, vr) != NULL;
}

static bool vr_is(const char *vr, const char *want)
{
	return vr && strcmp(vr, want) == 0;
}

static const fdn_deid_site_rule *site_rule(const fdn_deid_profile *p, uint32_t tag)
{
	size_t lo = 0, hi = p->rule_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->rules[mid].tag == tag)
			return &p->rules[mid];
		if (p->rules[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static fdn_deid_decision decision(fdn_deid_op op, const char *code)
{
	fdn_deid_decision d = { op, code };

	return d;
}

/* Dates are the one kind of value whose treatment follows the two
 * longitudinal options rather than the letter in the table. */
static fdn_deid_op date_op(const fdn_deid_profile *p, const char *vr)
{
	bool is_date = vr_is(vr, "DA") || vr_is(vr, "DT");

	if (p->options & FDN_DEID_RETAIN_LONG_MODIFIED_DATES)
		return is_date ? FDN_DEID_OP_SHIFT : FDN_DEID_OP_KEEP;
	if (p->options & FDN_DEID_RETAIN_LONG_FULL_DATES)
		return FDN_DEID_OP_KEEP;
	return FDN_DEID_OP_EMPTY;
}

/*
 * PS3.15 E.3.10: a safe private attribute is kept, but its value still
 * gets what the Basic Profile would do to a value of its kind.  The
 * safe list holds no names or free text, so the VR is enough to tell.
 */
static fdn_deid_decision safe_private_value(const fdn_deid_profile *p, const char *vr)
{
	if (vr_is(vr, "SQ"))
		return decision(FDN_DEID_OP_DESCEND, "K");
	if (vr_is(vr, "UI"))
		return (p->options & FDN_DEID_RETAIN_UIDS) ?
			decision(FDN_DEID_OP_KEEP, "K") : decision(FDN_DEID_OP_UID, "U");
	if (vr_is(vr, "DA") || vr_is(vr, "DT") || vr_is(vr, "TM")) {
		fdn_deid_op op = date_op(p, vr);
		return decision(op, op == FDN_DEID_OP_EMPTY ? "Z" :
			op == FDN_DEID_OP_KEEP ? "K" : "C");
	}
	if (vr_is(vr, "PN"))
		return decision(FDN_DEID_OP_EMPTY, "Z");
	return decision(FDN_DEID_OP_KEEP, "K");
}

static fdn_deid_decision private_decision(const fdn_deid_profile *p, uint32_t tag,
	const char *vr, const char *creator)
{
	uint16_t group = (uint16_t)(tag >> 16), element = (uint16_t)tag;

	if (!(p->options & FDN_DEID_RETAIN_SAFE_PRIVATE))
		return decision(FDN_DEID_OP_REMOVE, "X");
	if (element >= 0x0010 && element <= 0x00FF)
		return decision(FDN_DEID_OP_CREATOR, "K");
	/* (gggg,0001-000F) and (gggg,0100-0FFF) belong to no block. */
	if (element < 0x1000 || !creator)
		return decision(FDN_DEID_OP_REMOVE, "X");
	if (!fdn_deid__safe_private_find(group, (uint8_t)(element & 0xFF), creator,
		    strlen(creator)))
		return decision(FDN_DEID_OP_REMOVE, "X");
	return safe_private_value(p, vr);
}

static fdn_deid_decision site_decision(const fdn_deid_profile *p,
	const fdn_deid_site_rule *r, const char *vr)
{
	bool sq = vr_is(vr, "SQ");

	switch (r->action) {
	case FDN_DEID_SITE_KEEP:
		return decision(sq ? FDN_DEID_OP_DESCEND : FDN_DEID_OP_KEEP, "K");
	case FDN_DEID_SITE_REMOVE:
		return decision(FDN_DEID_OP_REMOVE, "X");
	case FDN_DEID_SITE_EMPTY:
		return decision(FDN_DEID_OP_EMPTY, "Z");
	case FDN_DEID_SITE_DUMMY:
		return decision(sq ? FDN_DEID_OP_DESCEND : FDN_DEID_OP_DUMMY, "D");
	case FDN_DEID_SITE_CLEAN:
		if (sq)
			return decision(FDN_DEID_OP_DESCEND, "C");
		if (vr_is(vr, "DA") || vr_is(vr, "DT"))
			return decision(date_op(p, vr), "C");
		return decision(FDN_DEID_OP_CLEAN, "C");
	default:
		if (sq)
			return decision(FDN_DEID_OP_DESCEND, "K");
		if (vr_is(vr, "UI"))
			return decision(FDN_DEID_OP_UID, "U");
		if (vr_is(vr, "DA") || vr_is(vr, "DT"))
			return decision(FDN_DEID_OP_SHIFT, "C");
		return decision(FDN_DEID_OP_PSEUDO, "D");
	}
}

/* A concrete (resolved) table action applied to an element of VR @p vr. */
static fdn_deid_decision table_decision(const fdn_deid_profile *p, fdn_deid_action a,
	const char *vr)
{
	bool sq = vr_is(vr, "SQ");
	const char *code = fdn_deid__action_code(a);

	switch (a) {
	case FDN_DEID_ACT_X:
		return decision(FDN_DEID_OP_REMOVE, code);
	case FDN_DEID_ACT_Z:
		return decision(FDN_DEID_OP_EMPTY, code);
	case FDN_DEID_ACT_D:
		/* A sequence keeps its items (a non-zero-length value) and the
		 * profile is applied to their content: removing everything in
		 * them would drop Type 1 attributes the IOD needs (dciodvfy:
		 * Verifying Observer Sequence, Content Sequence). */
		return decision(sq ? FDN_DEID_OP_DESCEND : FDN_DEID_OP_DUMMY, code);
	case FDN_DEID_ACT_U:
		if (sq)
			return decision(FDN_DEID_OP_DESCEND, code);
		return decision(vr_is(vr, "UI") ? FDN_DEID_OP_UID : FDN_DEID_OP_DUMMY, code);
	case FDN_DEID_ACT_C:
		if (sq)
			return decision(FDN_DEID_OP_DESCEND, code);
		if (vr_is(vr, "DA") || vr_is(vr, "DT") || vr_is(vr, "TM"))
			return decision(date_op(p, vr), code);
		if (vr_is(vr, "UI"))
			return decision(FDN_DEID_OP_UID, code);
		return decision(FDN_DEID_OP_CLEAN, code);
	default:
		return decision(sq ? FDN_DEID_OP_DESCEND : FDN_DEID_OP_KEEP, "K");
	}
}

fdn_deid_decision fdn_deid__decide(const fdn_deid_profile *p, int sop_index,
	const uint32_t *path, size_t depth, const char *vr, const char *creator)
{
	uint32_t tag = path[depth];
	const fdn_deid_site_rule *sr;
	const fdn_deid_rule *r;
	fdn_deid_action a;

	if ((tag >> 16) & 1u)
		return private_decision(p, tag, vr, creator);
	if ((sr = site_rule(p, tag)) != NULL)
		return site_decision(p, sr, vr);
	r = fdn_deid__rule_for_tag(tag);
	if (!r)
		return decision(vr_is(vr, "SQ") ? FDN_DEID_OP_DESCEND : FDN_DEID_OP_KEEP, "K");
	a = fdn_deid__action(r, p->table_mask);
	if (fdn_deid__action_is_composite(a))
		a = fdn_deid__resolve_at(a, sop_index, path, depth + 1);
	/* Patient ID and Name are not emptied but pseudonymised, so that the
	 * data of one patient stays linkable (ARCHITECTURE.md section 4). */
	if ((tag == 0x00100020u || tag == 0x00100010u) &&
	    (a == FDN_DEID_ACT_Z || a == FDN_DEID_ACT_D || a == FDN_DEID_ACT_X))
		return decision(FDN_DEID_OP_PSEUDO, fdn_deid__action_code(a));
	return table_decision(p, a, vr);
}
