/*
 * Lookups over the generated de-identification tables (tables.c).  The
 * de-identifier asks for the rule of every element of every file, so the
 * common path is one binary search over a packed array of 652 tags that
 * stays in cache, with no allocation and no locking.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "tables.h"

/* --- Table E.1-1 ----------------------------------------------------------- */

static const fdn_deid_rule *exact_rule(uint32_t tag)
{
	size_t lo = 0, hi = fdn_deid__exact_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t t = fdn_deid__exact_tags[mid];

		if (t == tag)
			return &fdn_deid__rules[mid];
		if (t < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The table writes (50xx,xxxx) and (60xx,...), but PS3.5 7.6 only defines
 * the even groups 5000-501E and 6000-601E as repeating groups; anything
 * else there is a different (or private) attribute.
 */
static bool in_repeating_range(uint16_t group)
{
	uint16_t base = group & 0xFF00u;

	return (base == 0x5000u || base == 0x6000u) &&
		(group & 1u) == 0 && (group & 0xFFu) <= 0x1Eu;
}

const fdn_deid_rule *fdn_deid__rule_for_tag(uint32_t tag)
{
	uint16_t group = (uint16_t)(tag >> 16);
	const fdn_deid_rule *r = exact_rule(tag);

	if (r)
		return r;
	if (in_repeating_range(group)) {
		for (size_t i = fdn_deid__exact_count; i < fdn_deid__rule_count; i++) {
			r = &fdn_deid__rules[i];
			if (r->match == FDN_DEID_MATCH_REPEATING_GROUP &&
			    (tag & r->mask) == r->tag)
				return r;
		}
		return NULL;
	}
	if (group & 1u)
		return &fdn_deid__rules[fdn_deid__rule_count - 1];
	return NULL;
}

/*
 * How much each action withholds, for options that disagree (tables.h
 * explains the choice).  The option columns hold only K and C; the other
 * ranks keep the order total should a later edition add more codes.  A
 * composite sits below D as it may resolve to K or U.
 */
static const uint8_t protection[FDN_DEID_ACT_COUNT] = {
	[FDN_DEID_ACT_NONE] = 0,
	[FDN_DEID_ACT_K] = 1,
	[FDN_DEID_ACT_C] = 2,
	[FDN_DEID_ACT_U] = 3,
	[FDN_DEID_ACT_Z_D] = 4,
	[FDN_DEID_ACT_X_Z] = 4,
	[FDN_DEID_ACT_X_D] = 4,
	[FDN_DEID_ACT_X_Z_D] = 4,
	[FDN_DEID_ACT_X_Z_U] = 4,
	[FDN_DEID_ACT_D] = 5,
	[FDN_DEID_ACT_Z] = 6,
	[FDN_DEID_ACT_X] = 7,
};

fdn_deid_action fdn_deid__action(const fdn_deid_rule *r, unsigned option_mask)
{
	unsigned in_force = r->option_set & option_mask & FDN_DEID_OPT_ALL;
	unsigned best = FDN_DEID_ACT_NONE;

	if (!in_force)
		return (fdn_deid_action)r->basic;
	for (unsigned o = 0; o < FDN_DEID_OPT_COUNT; o++) {
		unsigned a = r->option[o];

		if ((in_force & FDN_DEID_OPT_BIT(o)) && a < FDN_DEID_ACT_COUNT &&
		    protection[a] > protection[best])
			best = a;
	}
	return (fdn_deid_action)best;
}

bool fdn_deid__action_is_composite(fdn_deid_action a)
{
	return a >= FDN_DEID_ACT_Z_D && a < FDN_DEID_ACT_COUNT;
}

const char *fdn_deid__action_code(fdn_deid_action a)
{
	static const char *const codes[FDN_DEID_ACT_COUNT] = {
		"", "D", "Z", "X", "K", "C", "U",
		"Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*",
	};

	return (unsigned)a < FDN_DEID_ACT_COUNT ? codes[a] : "";
}

/* --- safe private attributes ----------------------------------------------- */

/* strcmp() order between a tabled string and @p len bytes of @p s. */
static int tabled_cmp(const char *tabled, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char a = (unsigned char)tabled[i];
		unsigned char b = (unsigned char)s[i];

		if (a != b)
			return a < b ? -1 : 1;
		if (a == '\0') /* s holds a NUL: the tabled string is a prefix */
			return -1;
	}
	return tabled[len] != '\0';
}

static int safe_cmp(const fdn_deid_safe_private_row *row, uint16_t group,
	uint8_t offset, const char *creator, size_t len)
{
	if (row->group != group)
		return row->group < group ? -1 : 1;
	if (row->element_offset != offset)
		return row->element_offset < offset ? -1 : 1;
	return tabled_cmp(row->creator, creator, len);
}

const fdn_deid_safe_private_row *fdn_deid__safe_private_find(uint16_t group,
	uint8_t element_offset, const char *creator, size_t creator_len)
{
	size_t lo = 0, hi = fdn_deid__safe_private_count;

	if (!creator)
		return NULL;
	/* LO values are padded with spaces to an even length. */
	while (creator_len > 0 && creator[creator_len - 1] == ' ')
		creator_len--;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const fdn_deid_safe_private_row *row = &fdn_deid__safe_private_rows[mid];
		int c = safe_cmp(row, group, element_offset, creator, creator_len);

		if (c == 0)
			return row;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool fdn_deid__safe_private(uint16_t group, uint8_t element_offset,
	const char *creator)
{
	return creator && fdn_deid__safe_private_find(group, element_offset,
		creator, strlen(creator)) != NULL;
}

/* --- Types per SOP Class --------------------------------------------------- */

int fdn_deid__sop_class_index(const char *sop_class_uid)
{
	size_t len, lo = 0, hi = fdn_deid__sop_class_count;

	if (!sop_class_uid)
		return -1;
	len = strlen(sop_class_uid);
	while (len > 0 && sop_class_uid[len - 1] == ' ')
		len--;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const fdn_deid_sop_class *sc = &fdn_deid__sop_classes[mid];
		int c = tabled_cmp(sc->uid, sop_class_uid, len);

		if (c == 0)
			return sc->has_iod_data ? (int)mid : -1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Tuple order, a prefix first: the order the generator sorted paths in. */
static int path_cmp(const fdn_deid_path *p, const uint32_t *q, size_t depth)
{
	const uint32_t *tags = &fdn_deid__path_tags[p->first];
	size_t n = p->depth < depth ? p->depth : depth;

	for (size_t i = 0; i < n; i++) {
		if (tags[i] != q[i])
			return tags[i] < q[i] ? -1 : 1;
	}
	if (p->depth == depth)
		return 0;
	return p->depth < depth ? -1 : 1;
}

fdn_deid_type fdn_deid__composite_type_at(int sop_index, const uint32_t *path,
	size_t depth)
{
	const fdn_deid_sop_class *sc;
	size_t lo, hi;

	if (sop_index < 0 || (size_t)sop_index >= fdn_deid__sop_class_count)
		return FDN_DEID_TYPE_UNKNOWN;
	sc = &fdn_deid__sop_classes[sop_index];
	if (!sc->has_iod_data)
		return FDN_DEID_TYPE_UNKNOWN;
	if (!path || depth == 0)
		return FDN_DEID_TYPE_ABSENT;
	/* Entries are sorted by path index, and path indices by path. */
	lo = sc->first;
	hi = (size_t)sc->first + sc->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint16_t occ = fdn_deid__occurrences[mid];
		int c = path_cmp(&fdn_deid__paths[occ >> 2], path, depth);

		if (c == 0)
			return (fdn_deid_type)(occ & 3u);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return FDN_DEID_TYPE_ABSENT;
}

fdn_deid_type fdn_deid__composite_type(const char *sop_class_uid,
	const uint32_t *path, size_t depth)
{
	return fdn_deid__composite_type_at(fdn_deid__sop_class_index(sop_class_uid),
		path, depth);
}

/*
 * Without Types, pick what keeps any IOD valid and nothing identifying: a
 * dummy or remapped UIDs where some IOD requires a value, else empty.  The
 * generator computed each row's choice from all IODs (rule->fallback);
 * the table here is for a composite passed with a tag of another row.
 */
static fdn_deid_action fallback(fdn_deid_action action, const uint32_t *path,
	size_t depth)
{
	const fdn_deid_rule *r = path && depth ? fdn_deid__rule_for_tag(path[depth - 1]) : NULL;

	if (r && r->basic == action && r->fallback != FDN_DEID_ACT_NONE)
		return (fdn_deid_action)r->fallback;
	switch (action) {
	case FDN_DEID_ACT_X_Z:
		return FDN_DEID_ACT_Z;
	case FDN_DEID_ACT_X_Z_U:
		return FDN_DEID_ACT_U;
	default:
		return FDN_DEID_ACT_D;
	}
}

fdn_deid_action fdn_deid__resolve_at(fdn_deid_action action, int sop_index,
	const uint32_t *path, size_t depth)
{
	fdn_deid_type type;

	if (!fdn_deid__action_is_composite(action))
		return action;
	type = fdn_deid__composite_type_at(sop_index, path, depth);
	if (type == FDN_DEID_TYPE_UNKNOWN)
		return fallback(action, path, depth);
	switch (action) {
	case FDN_DEID_ACT_Z_D:
		return type == FDN_DEID_TYPE_1 ? FDN_DEID_ACT_D : FDN_DEID_ACT_Z;
	case FDN_DEID_ACT_X_Z:
		/* Type 1: the code offers no non-empty value; keep and clean. */
		return type == FDN_DEID_TYPE_1 ? FDN_DEID_ACT_K :
			type == FDN_DEID_TYPE_2 ? FDN_DEID_ACT_Z : FDN_DEID_ACT_X;
	case FDN_DEID_ACT_X_D:
		/* Type 2: removing breaks the IOD, and a dummy is allowed. */
		return type <= FDN_DEID_TYPE_2 ? FDN_DEID_ACT_D : FDN_DEID_ACT_X;
	case FDN_DEID_ACT_X_Z_D:
		return type == FDN_DEID_TYPE_1 ? FDN_DEID_ACT_D :
			type == FDN_DEID_TYPE_2 ? FDN_DEID_ACT_Z : FDN_DEID_ACT_X;
	case FDN_DEID_ACT_X_Z_U:
		/* Type 2 could be emptied (Z), but replacing the UIDs inside is
		 * also allowed and keeps references consistent: an emptied
		 * Source Image Sequence in a Segmentation's per-frame groups
		 * left its Referenced Series Sequence pointing at nothing
		 * (dciodvfy).  Remapped UIDs identify no one. */
		return type <= FDN_DEID_TYPE_2 ? FDN_DEID_ACT_U : FDN_DEID_ACT_X;
	default:
		return action;
	}
}

fdn_deid_action fdn_deid__resolve(fdn_deid_action action,
	const char *sop_class_uid, const uint32_t *path, size_t depth)
{
	if (!fdn_deid__action_is_composite(action))
		return action;
	return fdn_deid__resolve_at(action, fdn_deid__sop_class_index(sop_class_uid),
		path, depth);
}

/* --- CID 7050 -------------------------------------------------------------- */

/* Code Meanings as PS3.16 gives them; recipients may match on the text. */
static const fdn_deid_code basic_code = {
	"113100", "DCM", "Basic Application Confidentiality Profile"
};
static const fdn_deid_code clean_pixel_code = {
	"113101", "DCM", "Clean Pixel Data Option"
};
static const fdn_deid_code clean_visual_code = {
	"113102", "DCM", "Clean Recognizable Visual Features Option"
};
static const fdn_deid_code option_codes[FDN_DEID_OPT_COUNT] = {
	[FDN_DEID_OPT_RETAIN_SAFE_PRIVATE] =
		{ "113111", "DCM", "Retain Safe Private Option" },
	[FDN_DEID_OPT_RETAIN_UIDS] =
		{ "113110", "DCM", "Retain UIDs Option" },
	[FDN_DEID_OPT_RETAIN_DEVICE_IDENTITY] =
		{ "113109", "DCM", "Retain Device Identity Option" },
	[FDN_DEID_OPT_RETAIN_INSTITUTION_IDENTITY] =
		{ "113112", "DCM", "Retain Institution Identity Option" },
	[FDN_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS] =
		{ "113108", "DCM", "Retain Patient Characteristics Option" },
	[FDN_DEID_OPT_RETAIN_LONG_FULL_DATES] =
		{ "113106", "DCM", "Retain Longitudinal Temporal Information Full Dates Option" },
	[FDN_DEID_OPT_RETAIN_LONG_MODIFIED_DATES] =
		{ "113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option" },
	[FDN_DEID_OPT_CLEAN_DESCRIPTORS] =
		{ "113105", "DCM", "Clean Descriptors Option" },
	[FDN_DEID_OPT_CLEAN_STRUCTURED_CONTENT] =
		{ "113104", "DCM", "Clean Structured Content Option" },
	[FDN_DEID_OPT_CLEAN_GRAPHICS] =
		{ "113103", "DCM", "Clean Graphics Option" },
};

const fdn_deid_code *fdn_deid__cid7050_basic(void)
{
	return &basic_code;
}

const fdn_deid_code *fdn_deid__cid7050_option(fdn_deid_option o)
{
	return (unsigned)o < FDN_DEID_OPT_COUNT ? &option_codes[o] : NULL;
}

const fdn_deid_code *fdn_deid__cid7050_clean_pixel_data(void)
{
	return &clean_pixel_code;
}

const fdn_deid_code *fdn_deid__cid7050_clean_visual_features(void)
{
	return &clean_visual_code;
}
