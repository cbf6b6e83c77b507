/*
 * White-box tests of the de-identification tables (lib/deid/tables.c,
 * generated from data/ps3.15-2026c/) and their lookups (lib/deid/
 * lookup.c).  The expected counts and spot checks are those that
 * data/ps3.15-2026c/README.md states, so a table that drifts from its
 * documented source fails here even if the generator's own checks were
 * loosened.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "deid/tables.h"

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))
#define BIT(o) FDN_DEID_OPT_BIT(FDN_DEID_OPT_##o)
#define ACT(a) FDN_DEID_ACT_##a
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define CT_IMAGE "1.2.840.10008.5.1.4.1.1.2"
#define ENHANCED_CT "1.2.840.10008.5.1.4.1.1.2.1"
#define ENHANCED_MR "1.2.840.10008.5.1.4.1.1.4.1"
#define DX_PRESENTATION "1.2.840.10008.5.1.4.1.1.1.1"
#define RT_PLAN "1.2.840.10008.5.1.4.1.1.481.5"
#define RT_PHYSICIAN_INTENT "1.2.840.10008.5.1.4.1.1.481.10"
#define BLENDING_PS "1.2.840.10008.5.1.4.1.1.11.4"
#define ADV_BLENDING_PS "1.2.840.10008.5.1.4.1.1.11.8"
#define CT_DEFINED_PROTOCOL "1.2.840.10008.5.1.4.1.1.200.1"
#define NM_RETIRED "1.2.840.10008.5.1.4.1.1.5"
#define BASIC_DIRECTORY "1.2.840.10008.1.3.10"

static const fdn_deid_rule *rule(uint16_t g, uint16_t e)
{
	const fdn_deid_rule *r = fdn_deid__rule_for_tag(TAG(g, e));

	if (!r)
		print_error("no rule for (%04X,%04X)\n", g, e);
	assert_non_null(r);
	return r;
}

/* The action in force for the row of (g,e) with @p options in use. */
static fdn_deid_action act(uint16_t g, uint16_t e, unsigned options)
{
	return fdn_deid__action(rule(g, e), options);
}

/* --- layout and counts ------------------------------------------------------ */

static void test_layout(void **state)
{
	(void)state;
	assert_int_equal(fdn_deid__rule_count, 656);
	assert_int_equal(fdn_deid__exact_count, 652);
	for (size_t i = 0; i < fdn_deid__exact_count; i++) {
		const fdn_deid_rule *r = &fdn_deid__rules[i];

		assert_int_equal(r->match, FDN_DEID_MATCH_EXACT);
		assert_int_equal(r->mask, 0xFFFFFFFFu);
		assert_int_equal(fdn_deid__exact_tags[i], r->tag);
		if (i > 0)
			assert_true(fdn_deid__exact_tags[i - 1] < r->tag);
		assert_non_null(r->keyword);
		assert_non_null(r->name);
		assert_non_null(r->vr);
		/* Every exact row is found, and found as itself. */
		assert_ptr_equal(fdn_deid__rule_for_tag(r->tag), r);
	}
	for (size_t i = 652; i < 655; i++) {
		assert_int_equal(fdn_deid__rules[i].match, FDN_DEID_MATCH_REPEATING_GROUP);
		assert_null(fdn_deid__rules[i].keyword);
		assert_null(fdn_deid__rules[i].vr);
	}
	assert_int_equal(fdn_deid__rules[655].match, FDN_DEID_MATCH_PRIVATE);
	assert_string_equal(fdn_deid__rules[655].name, "Private Attributes");
}

static void test_counts(void **state)
{
	/* README: counts per column (non-null). */
	static const struct { fdn_deid_action a; size_t n; } basic[] = {
		{ ACT(X), 416 }, { ACT(D), 93 }, { ACT(U), 55 }, { ACT(Z), 42 },
		{ ACT(X_D), 23 }, { ACT(X_Z), 11 }, { ACT(X_Z_D), 8 },
		{ ACT(Z_D), 6 }, { ACT(X_Z_U), 2 },
	};
	static const struct { fdn_deid_option o; size_t k, c; } opt[] = {
		{ FDN_DEID_OPT_RETAIN_SAFE_PRIVATE, 0, 1 },
		{ FDN_DEID_OPT_RETAIN_UIDS, 60, 0 },
		{ FDN_DEID_OPT_RETAIN_DEVICE_IDENTITY, 48, 11 },
		{ FDN_DEID_OPT_RETAIN_INSTITUTION_IDENTITY, 10, 0 },
		{ FDN_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS, 14, 5 },
		{ FDN_DEID_OPT_RETAIN_LONG_FULL_DATES, 169, 0 },
		{ FDN_DEID_OPT_RETAIN_LONG_MODIFIED_DATES, 0, 169 },
		{ FDN_DEID_OPT_CLEAN_DESCRIPTORS, 0, 140 },
		{ FDN_DEID_OPT_CLEAN_STRUCTURED_CONTENT, 0, 4 },
		{ FDN_DEID_OPT_CLEAN_GRAPHICS, 0, 4 },
	};
	size_t by_basic[FDN_DEID_ACT_COUNT] = { 0 };
	size_t k[FDN_DEID_OPT_COUNT] = { 0 }, c[FDN_DEID_OPT_COUNT] = { 0 };
	size_t retired = 0, composite = 0, full_vs_modified = 0, total = 0;

	(void)state;
	for (size_t i = 0; i < fdn_deid__rule_count; i++) {
		const fdn_deid_rule *r = &fdn_deid__rules[i];
		unsigned set = 0;

		assert_true(r->basic > ACT(NONE) && r->basic < FDN_DEID_ACT_COUNT);
		by_basic[r->basic]++;
		retired += r->retired;
		for (unsigned o = 0; o < FDN_DEID_OPT_COUNT; o++) {
			assert_true(r->option[o] == ACT(NONE) || r->option[o] == ACT(K) ||
				    r->option[o] == ACT(C));
			k[o] += r->option[o] == ACT(K);
			c[o] += r->option[o] == ACT(C);
			if (r->option[o] != ACT(NONE))
				set |= FDN_DEID_OPT_BIT(o);
		}
		assert_int_equal(r->option_set, set);
		full_vs_modified += r->option[FDN_DEID_OPT_RETAIN_LONG_FULL_DATES] !=
			r->option[FDN_DEID_OPT_RETAIN_LONG_MODIFIED_DATES];
		/* A fallback exactly where the action needs a Type. */
		if (fdn_deid__action_is_composite((fdn_deid_action)r->basic)) {
			composite++;
			assert_true(r->fallback == ACT(D) || r->fallback == ACT(Z) ||
				    r->fallback == ACT(U));
		} else {
			assert_int_equal(r->fallback, ACT(NONE));
		}
	}
	for (size_t i = 0; i < N(basic); i++) {
		assert_int_equal(by_basic[basic[i].a], basic[i].n);
		total += basic[i].n;
	}
	assert_int_equal(total, 656);
	for (size_t i = 0; i < N(opt); i++) {
		assert_int_equal(k[opt[i].o], opt[i].k);
		assert_int_equal(c[opt[i].o], opt[i].c);
	}
	assert_int_equal(retired, 102);
	assert_int_equal(composite, 50);
	assert_int_equal(full_vs_modified, 169);

	assert_int_equal(fdn_deid__safe_private_count, 479);
	assert_int_equal(fdn_deid__sop_class_count, 180);
	assert_int_equal(fdn_deid__occurrence_count,
		fdn_deid__sop_classes[fdn_deid__sop_class_count - 1].first +
		fdn_deid__sop_classes[fdn_deid__sop_class_count - 1].count);
}

/* 20 distinct creators, rows sorted as the binary search needs. */
static void test_safe_private_table(void **state)
{
	const char *creators[32];
	size_t ncreators = 0;

	(void)state;
	for (size_t i = 0; i < fdn_deid__safe_private_count; i++) {
		const fdn_deid_safe_private_row *r = &fdn_deid__safe_private_rows[i];
		size_t j;

		assert_true(r->group & 1u);
		if (i > 0) {
			const fdn_deid_safe_private_row *p = r - 1;

			assert_true(p->group < r->group ||
				(p->group == r->group && (p->element_offset < r->element_offset ||
				(p->element_offset == r->element_offset &&
				 strcmp(p->creator, r->creator) < 0))));
		}
		for (j = 0; j < ncreators && strcmp(creators[j], r->creator) != 0; j++)
			;
		if (j == ncreators) {
			assert_true(ncreators < N(creators));
			creators[ncreators++] = r->creator;
		}
		/* Every row is found through the lookup. */
		assert_ptr_equal(fdn_deid__safe_private_find(r->group,
			r->element_offset, r->creator, strlen(r->creator)), r);
	}
	assert_int_equal(ncreators, 20);
}

/* --- rows ------------------------------------------------------------------ */

static void test_spot_rows(void **state)
{
	const fdn_deid_rule *r;

	(void)state;
	r = rule(0x0008, 0x0050);
	assert_string_equal(r->keyword, "AccessionNumber");
	assert_string_equal(r->name, "Accession Number");
	assert_string_equal(r->vr, "SH");
	assert_int_equal(r->basic, ACT(Z));
	assert_int_equal(r->option_set, 0);

	/* Patient's Age X, Retain Patient Characteristics K. */
	r = rule(0x0010, 0x1010);
	assert_int_equal(r->basic, ACT(X));
	assert_int_equal(r->option[FDN_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS], ACT(K));
	assert_int_equal(act(0x0010, 0x1010, BIT(RETAIN_PATIENT_CHARACTERISTICS)), ACT(K));
	assert_int_equal(act(0x0010, 0x1010, BIT(RETAIN_UIDS)), ACT(X));

	/* Device Serial Number X/Z/D, Retain Device Identity K. */
	r = rule(0x0018, 0x1000);
	assert_int_equal(r->basic, ACT(X_Z_D));
	assert_int_equal(r->option[FDN_DEID_OPT_RETAIN_DEVICE_IDENTITY], ACT(K));
	assert_int_equal(r->fallback, ACT(D));

	/* Institution Name X/Z/D, Retain Institution Identity K. */
	r = rule(0x0008, 0x0080);
	assert_string_equal(r->keyword, "InstitutionName");
	assert_int_equal(r->basic, ACT(X_Z_D));
	assert_int_equal(r->option[FDN_DEID_OPT_RETAIN_INSTITUTION_IDENTITY], ACT(K));
	assert_int_equal(act(0x0008, 0x0080, BIT(RETAIN_INSTITUTION_IDENTITY)), ACT(K));
	assert_int_equal(act(0x0008, 0x0080, 0), ACT(X_Z_D));

	/* Study Date Z, Full Dates K, Modified Dates C. */
	assert_int_equal(act(0x0008, 0x0020, 0), ACT(Z));
	assert_int_equal(act(0x0008, 0x0020, BIT(RETAIN_LONG_FULL_DATES)), ACT(K));
	assert_int_equal(act(0x0008, 0x0020, BIT(RETAIN_LONG_MODIFIED_DATES)), ACT(C));

	/* Study Instance UID U, Retain UIDs K. */
	assert_int_equal(act(0x0020, 0x000D, 0), ACT(U));
	assert_int_equal(act(0x0020, 0x000D, BIT(RETAIN_UIDS)), ACT(K));

	/* Content Sequence D, Clean Structured Content C. */
	assert_int_equal(act(0x0040, 0xA730, 0), ACT(D));
	assert_int_equal(act(0x0040, 0xA730, BIT(CLEAN_STRUCTURED_CONTENT)), ACT(C));

	/* New since 2024b: Gender Identity Sequence X; Table Top Position
	 * Alignment UID U, Retain UIDs K. */
	r = rule(0x0010, 0x0041);
	assert_int_equal(r->basic, ACT(X));
	assert_int_equal(r->option_set, 0);
	assert_int_equal(act(0x300A, 0x0054, 0), ACT(U));
	assert_int_equal(act(0x300A, 0x0054, BIT(RETAIN_UIDS)), ACT(K));

	/* The only note: Icon Image Sequence. */
	r = rule(0x0088, 0x0200);
	assert_int_equal(r->note, FDN_DEID_NOTE_ICON_IMAGE);
	assert_int_equal(rule(0x0010, 0x0010)->note, 0);

	/* Command group rows come from pydicom's dictionary. */
	assert_string_equal(rule(0x0000, 0x1000)->keyword, "AffectedSOPInstanceUID");
}

static void test_repeating_groups(void **state)
{
	const fdn_deid_rule *r;

	(void)state;
	/* (50xx,xxxx) Curve Data, only in even groups 5000-501E. */
	r = rule(0x5010, 0x3000);
	assert_string_equal(r->name, "Curve Data");
	assert_int_equal(r->match, FDN_DEID_MATCH_REPEATING_GROUP);
	assert_int_equal(r->basic, ACT(X));
	assert_int_equal(fdn_deid__action(r, BIT(CLEAN_GRAPHICS)), ACT(C));
	assert_ptr_equal(rule(0x5000, 0x0000), r);
	assert_ptr_equal(rule(0x501E, 0xFFFF), r);
	assert_null(fdn_deid__rule_for_tag(TAG(0x5020, 0x3000)));
	assert_null(fdn_deid__rule_for_tag(TAG(0x5080, 0x0010)));
	/* Odd groups are private, not curves. */
	assert_int_equal(rule(0x5021, 0x3000)->match, FDN_DEID_MATCH_PRIVATE);
	assert_int_equal(rule(0x5011, 0x3000)->match, FDN_DEID_MATCH_PRIVATE);

	/* (60xx,3000) Overlay Data, (60xx,4000) Overlay Comments. */
	r = rule(0x6002, 0x3000);
	assert_string_equal(r->name, "Overlay Data");
	assert_false(r->retired);
	assert_ptr_equal(rule(0x6000, 0x3000), r);
	assert_ptr_equal(rule(0x601E, 0x3000), r);
	assert_string_equal(rule(0x6004, 0x4000)->name, "Overlay Comments");
	assert_true(rule(0x6004, 0x4000)->retired);
	assert_int_equal(rule(0x6001, 0x3000)->match, FDN_DEID_MATCH_PRIVATE);
	assert_null(fdn_deid__rule_for_tag(TAG(0x6020, 0x3000)));
	/* Other overlay attributes are not in the table. */
	assert_null(fdn_deid__rule_for_tag(TAG(0x6000, 0x0010)));
	assert_null(fdn_deid__rule_for_tag(TAG(0x6002, 0x3001)));
}

static void test_private_rule(void **state)
{
	const fdn_deid_rule *p = &fdn_deid__rules[fdn_deid__rule_count - 1];

	(void)state;
	assert_ptr_equal(rule(0x0009, 0x0010), p); /* a Private Creator */
	assert_ptr_equal(rule(0x0019, 0x100A), p);
	assert_ptr_equal(rule(0x7053, 0x1000), p);
	assert_ptr_equal(rule(0xFFFF, 0xFFFF), p);
	assert_int_equal(p->basic, ACT(X));
	assert_int_equal(fdn_deid__action(p, 0), ACT(X));
	assert_int_equal(fdn_deid__action(p, BIT(RETAIN_SAFE_PRIVATE)), ACT(C));
	assert_int_equal(fdn_deid__action(p, FDN_DEID_OPT_ALL &
		~BIT(RETAIN_SAFE_PRIVATE)), ACT(X));

	/* Even-group attributes outside the table are kept: no row. */
	assert_null(fdn_deid__rule_for_tag(TAG(0x0028, 0x0010))); /* Rows */
	assert_null(fdn_deid__rule_for_tag(TAG(0x0008, 0x0016))); /* SOP Class UID */
	assert_null(fdn_deid__rule_for_tag(TAG(0xFFFE, 0xE000))); /* Item */
	assert_null(fdn_deid__rule_for_tag(0));
}

/* --- options ---------------------------------------------------------------- */

static void test_option_precedence(void **state)
{
	unsigned dev = BIT(RETAIN_DEVICE_IDENTITY);
	unsigned mod = BIT(RETAIN_LONG_MODIFIED_DATES);
	unsigned full = BIT(RETAIN_LONG_FULL_DATES);

	(void)state;
	/* Date of Last Calibration: X; Dev.Id K, Full K, Modif C. */
	assert_int_equal(act(0x0018, 0x1200, 0), ACT(X));
	assert_int_equal(act(0x0018, 0x1200, dev), ACT(K));
	assert_int_equal(act(0x0018, 0x1200, full), ACT(K));
	assert_int_equal(act(0x0018, 0x1200, dev | full), ACT(K));
	assert_int_equal(act(0x0018, 0x1200, mod), ACT(C));
	/* Clean beats keep, whatever the bit order. */
	assert_int_equal(act(0x0018, 0x1200, dev | mod), ACT(C));
	assert_int_equal(act(0x0018, 0x700C, dev | mod), ACT(C));
	assert_int_equal(act(0x300C, 0x0127, dev | mod), ACT(C));
	/* The pair the profile layer refuses still resolves safely. */
	assert_int_equal(act(0x0008, 0x0020, full | mod), ACT(C));
	/* Agreeing options: Patient Characteristics C and Clean Descriptors C. */
	for (size_t i = 0; i < fdn_deid__rule_count; i++) {
		const fdn_deid_rule *r = &fdn_deid__rules[i];

		if (r->option[FDN_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS] == ACT(C) &&
		    r->option[FDN_DEID_OPT_CLEAN_DESCRIPTORS] == ACT(C))
			assert_int_equal(fdn_deid__action(r,
				BIT(RETAIN_PATIENT_CHARACTERISTICS) | BIT(CLEAN_DESCRIPTORS)),
				ACT(C));
	}
	/* Device dates under every option but Full Dates: C wins. */
	assert_int_equal(act(0x0018, 0x1204, FDN_DEID_OPT_ALL & ~full), ACT(C));
	/* Options without a cell leave the Basic Profile action, even composite. */
	assert_int_equal(act(0x0018, 0x1000, BIT(RETAIN_UIDS) | BIT(CLEAN_GRAPHICS)),
		ACT(X_Z_D));
	/* Unknown bits are ignored. */
	assert_int_equal(act(0x0008, 0x0050, ~0u & ~FDN_DEID_OPT_ALL), ACT(Z));
	assert_int_equal(act(0x0020, 0x000D, ~0u), ACT(K));
}

static void test_action_codes(void **state)
{
	(void)state;
	assert_string_equal(fdn_deid__action_code(ACT(NONE)), "");
	assert_string_equal(fdn_deid__action_code(ACT(X_Z_U)), "X/Z/U*");
	assert_string_equal(fdn_deid__action_code(ACT(Z_D)), "Z/D");
	assert_string_equal(fdn_deid__action_code(ACT(K)), "K");
	assert_string_equal(fdn_deid__action_code((fdn_deid_action)99), "");
	assert_false(fdn_deid__action_is_composite(ACT(NONE)));
	assert_false(fdn_deid__action_is_composite(ACT(U)));
	assert_true(fdn_deid__action_is_composite(ACT(Z_D)));
	assert_true(fdn_deid__action_is_composite(ACT(X_Z_U)));
	assert_false(fdn_deid__action_is_composite(FDN_DEID_ACT_COUNT));
}

/* --- composite actions ------------------------------------------------------ */

static fdn_deid_action resolve1(const char *sop, uint32_t tag)
{
	const fdn_deid_rule *r = fdn_deid__rule_for_tag(tag);

	assert_non_null(r);
	return fdn_deid__resolve((fdn_deid_action)r->basic, sop, &tag, 1);
}

static fdn_deid_action resolve_path(const char *sop, const uint32_t *path,
	size_t depth)
{
	const fdn_deid_rule *r = fdn_deid__rule_for_tag(path[depth - 1]);

	assert_non_null(r);
	return fdn_deid__resolve((fdn_deid_action)r->basic, sop, path, depth);
}

/* The spot checks of data/ps3.15-2026c/README.md. */
static void test_composite_readme(void **state)
{
	(void)state;
	/* Institution Name in CT Image: General Equipment Type 3 -> X. */
	assert_int_equal(fdn_deid__composite_type(CT_IMAGE, (uint32_t[]){ TAG(0x0008, 0x0080) }, 1),
		FDN_DEID_TYPE_3);
	assert_int_equal(resolve1(CT_IMAGE, TAG(0x0008, 0x0080)), ACT(X));
	/* Device Serial Number in Enhanced CT: Type 1 (3 in General
	 * Equipment; the strictest wins) -> D. */
	assert_int_equal(fdn_deid__composite_type(ENHANCED_CT, (uint32_t[]){ TAG(0x0018, 0x1000) }, 1),
		FDN_DEID_TYPE_1);
	assert_int_equal(resolve1(ENHANCED_CT, TAG(0x0018, 0x1000)), ACT(D));
	/* Referenced PPS Sequence in DX For Presentation: Type 1C -> D. */
	assert_int_equal(resolve1(DX_PRESENTATION, TAG(0x0008, 0x1111)), ACT(D));
	/* Content Date: CT Type 2C -> Z; Enhanced MR Type 1 -> D. */
	assert_int_equal(resolve1(CT_IMAGE, TAG(0x0008, 0x0023)), ACT(Z));
	assert_int_equal(resolve1(ENHANCED_MR, TAG(0x0008, 0x0023)), ACT(D));
	/* Acquisition Context Sequence in DX: Type 2 -> Z. */
	assert_int_equal(resolve1(DX_PRESENTATION, TAG(0x0040, 0x0555)), ACT(Z));
	/* RT Plan Date in RT Plan: X/D at Type 2 -> D. */
	assert_int_equal(fdn_deid__composite_type(RT_PLAN, (uint32_t[]){ TAG(0x300A, 0x0006) }, 1),
		FDN_DEID_TYPE_2);
	assert_int_equal(resolve1(RT_PLAN, TAG(0x300A, 0x0006)), ACT(D));
	/* An unknown (retired) SOP Class: the fallback. */
	assert_int_equal(fdn_deid__composite_type(NM_RETIRED, (uint32_t[]){ TAG(0x0008, 0x0080) }, 1),
		FDN_DEID_TYPE_UNKNOWN);
	assert_int_equal(resolve1(NM_RETIRED, TAG(0x0008, 0x0080)), ACT(D));
	assert_int_equal(resolve1(NM_RETIRED, TAG(0x0008, 0x0022)), ACT(Z));   /* X/Z */
	assert_int_equal(resolve1(NM_RETIRED, TAG(0x0008, 0x0012)), ACT(D));   /* X/D */
	assert_int_equal(resolve1(NM_RETIRED, TAG(0x0010, 0x0020)), ACT(D));   /* Z/D */
	assert_int_equal(resolve1(NM_RETIRED, TAG(0x0008, 0x1140)), ACT(U));   /* X/Z/U* */
}

static void test_composite_rules(void **state)
{
	static const uint32_t inst_in_operator[] = { TAG(0x0008, 0x1072), TAG(0x0008, 0x0080) };
	static const uint32_t inst_code_in_operator[] = { TAG(0x0008, 0x1072), TAG(0x0008, 0x0082) };
	static const uint32_t pid_in_other_ids[] = { TAG(0x0010, 0x1002), TAG(0x0010, 0x0020) };
	static const uint32_t study_in_intent[] = { TAG(0x3010, 0x0057), TAG(0x3010, 0x005F),
		TAG(0x0008, 0x1110) };
	static const uint32_t image_in_blending[] = { TAG(0x0070, 0x0402), TAG(0x0008, 0x1115),
		TAG(0x0008, 0x1140) };
	static const uint32_t deep_unknown[] = { TAG(0x0008, 0x1072), TAG(0x0040, 0xA730),
		TAG(0x0008, 0x0080) };
	uint32_t tag;

	(void)state;
	/* Type depends on the path: top level 3, in an Operator
	 * Identification Sequence Item 1C. */
	assert_int_equal(fdn_deid__composite_type(CT_IMAGE, inst_in_operator, 2), FDN_DEID_TYPE_1);
	assert_int_equal(resolve_path(CT_IMAGE, inst_in_operator, 2), ACT(D));
	assert_int_equal(resolve_path(CT_IMAGE, inst_code_in_operator, 2), ACT(D));
	/* A path the IOD does not define: absent -> X. */
	assert_int_equal(fdn_deid__composite_type(CT_IMAGE, deep_unknown, 3), FDN_DEID_TYPE_ABSENT);
	assert_int_equal(resolve_path(CT_IMAGE, deep_unknown, 3), ACT(X));
	/* A prefix of a known path is not that path: Other Patient IDs
	 * Sequence has no composite action, Operator Identification Sequence
	 * (X/D) is Type 3 itself. */
	assert_int_equal(fdn_deid__composite_type(CT_IMAGE, pid_in_other_ids, 1), FDN_DEID_TYPE_ABSENT);
	assert_int_equal(fdn_deid__composite_type(CT_IMAGE, inst_in_operator, 1), FDN_DEID_TYPE_3);
	/* Z/D: Patient ID Type 2 at top level -> Z, Type 1 in Other Patient IDs -> D. */
	assert_int_equal(resolve1(CT_IMAGE, TAG(0x0010, 0x0020)), ACT(Z));
	assert_int_equal(resolve_path(CT_IMAGE, pid_in_other_ids, 2), ACT(D));
	/* Z/D at Type 3 (Content Creator's Name, 2025e) -> Z; Type 1 -> D. */
	assert_int_equal(resolve1(ADV_BLENDING_PS, TAG(0x0070, 0x0084)), ACT(Z));
	assert_int_equal(resolve1(CT_DEFINED_PROTOCOL, TAG(0x0070, 0x0084)), ACT(D));
	/* Z/D absent -> Z: Contrast/Bolus Agent is not in RT Plan. */
	assert_int_equal(fdn_deid__composite_type(RT_PLAN, (uint32_t[]){ TAG(0x0018, 0x0010) }, 1),
		FDN_DEID_TYPE_ABSENT);
	assert_int_equal(resolve1(RT_PLAN, TAG(0x0018, 0x0010)), ACT(Z));
	/* X/Z at Type 1: keep the Sequence and clean its Item. */
	assert_int_equal(resolve_path(RT_PHYSICIAN_INTENT, study_in_intent, 3), ACT(K));
	/* X/Z at Type 3 -> X. */
	assert_int_equal(resolve1(CT_IMAGE, TAG(0x0008, 0x0022)), ACT(X));
	/* X/Z/U*: Type 1 -> U (U*: keep, remap the UIDs inside); Type 3 -> X. */
	assert_int_equal(resolve_path(BLENDING_PS, image_in_blending, 3), ACT(U));
	assert_int_equal(resolve1(CT_IMAGE, TAG(0x0008, 0x1140)), ACT(X));

	/* Non-composite actions pass through untouched. */
	tag = TAG(0x0008, 0x0050);
	assert_int_equal(fdn_deid__resolve(ACT(Z), CT_IMAGE, &tag, 1), ACT(Z));
	assert_int_equal(fdn_deid__resolve(ACT(K), NULL, NULL, 0), ACT(K));
	assert_int_equal(fdn_deid__resolve(ACT(NONE), CT_IMAGE, &tag, 1), ACT(NONE));

	/* SOP Class lookup: trailing padding ignored, prefixes and Basic
	 * Directory (no IOD data) unknown. */
	assert_true(fdn_deid__sop_class_index(CT_IMAGE) >= 0);
	assert_int_equal(fdn_deid__sop_class_index(CT_IMAGE " "),
		fdn_deid__sop_class_index(CT_IMAGE));
	assert_int_equal(fdn_deid__sop_class_index("1.2.840.10008.5.1.4.1.1"), -1);
	assert_int_equal(fdn_deid__sop_class_index(CT_IMAGE ".9"), -1);
	assert_int_equal(fdn_deid__sop_class_index(BASIC_DIRECTORY), -1);
	assert_int_equal(fdn_deid__sop_class_index(""), -1);
	assert_int_equal(fdn_deid__sop_class_index(NULL), -1);
	assert_int_equal(fdn_deid__composite_type_at(-1, &tag, 1), FDN_DEID_TYPE_UNKNOWN);
	assert_int_equal(fdn_deid__composite_type_at(100000, &tag, 1), FDN_DEID_TYPE_UNKNOWN);
	assert_int_equal(fdn_deid__composite_type(CT_IMAGE, NULL, 0), FDN_DEID_TYPE_ABSENT);
	tag = TAG(0x0008, 0x0080);
	assert_int_equal(fdn_deid__resolve(ACT(X_Z_D), NULL, &tag, 1), ACT(D));
	assert_int_equal(fdn_deid__resolve(ACT(X_Z_D), BASIC_DIRECTORY, &tag, 1), ACT(D));
	/* Unknown class and no path: the conservative choice per code. */
	assert_int_equal(fdn_deid__resolve(ACT(X_Z), NULL, NULL, 0), ACT(Z));
	assert_int_equal(fdn_deid__resolve(ACT(X_Z_U), NULL, NULL, 0), ACT(U));
	assert_int_equal(fdn_deid__resolve(ACT(Z_D), NULL, NULL, 0), ACT(D));

	/* The _at variants agree with the UID ones. */
	{
		int ct = fdn_deid__sop_class_index(CT_IMAGE);

		assert_string_equal(fdn_deid__sop_classes[ct].iod, "CT Image");
		assert_int_equal(fdn_deid__resolve_at(ACT(X_Z_D), ct, inst_in_operator, 2), ACT(D));
		assert_int_equal(fdn_deid__resolve_at(ACT(X_Z_D), ct, &tag, 1), ACT(X));
	}
}

/* Every (SOP Class, path) of the data is found with a Type in 1..3. */
static void test_composite_all_entries(void **state)
{
	(void)state;
	for (size_t s = 0; s < fdn_deid__sop_class_count; s++) {
		const fdn_deid_sop_class *sc = &fdn_deid__sop_classes[s];

		assert_int_equal(fdn_deid__sop_class_index(sc->uid), sc->has_iod_data ? (int)s : -1);
		if (s > 0)
			assert_true(strcmp(fdn_deid__sop_classes[s - 1].uid, sc->uid) < 0);
		for (size_t i = sc->first; i < (size_t)sc->first + sc->count; i++) {
			uint16_t occ = fdn_deid__occurrences[i];
			const fdn_deid_path *p = &fdn_deid__paths[occ >> 2];
			const uint32_t *tags = &fdn_deid__path_tags[p->first];
			const fdn_deid_rule *r = fdn_deid__rule_for_tag(tags[p->depth - 1]);

			assert_true((occ & 3u) >= 1 && (occ & 3u) <= 3);
			assert_int_equal(fdn_deid__composite_type_at((int)s, tags, p->depth),
				(fdn_deid_type)(occ & 3u));
			/* The last tag is one of the 50 composite rows. */
			assert_non_null(r);
			assert_true(fdn_deid__action_is_composite((fdn_deid_action)r->basic));
		}
	}
}

/* --- safe private ------------------------------------------------------------ */

static void test_safe_private(void **state)
{
	const fdn_deid_safe_private_row *r;

	(void)state;
	/* (7053,xx00) Philips PET Private Group: SUV Factor, DS. */
	r = fdn_deid__safe_private_find(0x7053, 0x00, "Philips PET Private Group", 25);
	assert_non_null(r);
	assert_string_equal(r->vr, "DS");
	assert_true(fdn_deid__safe_private(0x7053, 0x09, "Philips PET Private Group"));
	/* Right creator, wrong offset or group. */
	assert_false(fdn_deid__safe_private(0x7053, 0x01, "Philips PET Private Group"));
	assert_false(fdn_deid__safe_private(0x7055, 0x00, "Philips PET Private Group"));
	/* Wrong creator: case, inner spaces, prefixes and extensions differ. */
	assert_false(fdn_deid__safe_private(0x7053, 0x00, "PHILIPS PET PRIVATE GROUP"));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, "Philips PET  Private Group"));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, "Philips PET Private Grou"));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, "Philips PET Private Group2"));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, " Philips PET Private Group"));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, "GEMS_ACQU_01"));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, ""));
	assert_false(fdn_deid__safe_private(0x7053, 0x00, NULL));
	/* Trailing space padding (LO is padded to even length) is ignored. */
	assert_true(fdn_deid__safe_private(0x0019, 0x23, "GEMS_ACQU_01 "));
	assert_false(fdn_deid__safe_private(0x0019, 0x23, "GEMS_ACQU_0"));
	assert_true(fdn_deid__safe_private(0x7053, 0x00, "Philips PET Private Group "));
	assert_true(fdn_deid__safe_private(0x7053, 0x00, "Philips PET Private Group   "));
	/* An explicit length excludes what follows; an embedded NUL does not match. */
	assert_non_null(fdn_deid__safe_private_find(0x7053, 0x00,
		"Philips PET Private GroupXYZ", 25));
	assert_null(fdn_deid__safe_private_find(0x7053, 0x00,
		"Philips PET Private Group\0", 26));
	assert_null(fdn_deid__safe_private_find(0x7053, 0x00, "Philips", 0));
}

/* --- CID 7050 ---------------------------------------------------------------- */

static void test_cid7050(void **state)
{
	static const char *const values[FDN_DEID_OPT_COUNT] = {
		"113111", "113110", "113109", "113112", "113108",
		"113106", "113107", "113105", "113104", "113103",
	};

	(void)state;
	assert_string_equal(fdn_deid__cid7050_basic()->value, "113100");
	assert_string_equal(fdn_deid__cid7050_basic()->meaning,
		"Basic Application Confidentiality Profile");
	assert_string_equal(fdn_deid__cid7050_clean_pixel_data()->value, "113101");
	assert_string_equal(fdn_deid__cid7050_clean_visual_features()->value, "113102");
	for (unsigned o = 0; o < FDN_DEID_OPT_COUNT; o++) {
		const fdn_deid_code *c = fdn_deid__cid7050_option((fdn_deid_option)o);

		assert_non_null(c);
		assert_string_equal(c->value, values[o]);
		assert_string_equal(c->scheme, "DCM");
		assert_true(strlen(c->meaning) <= 64); /* Code Meaning is LO */
	}
	assert_string_equal(fdn_deid__cid7050_option(FDN_DEID_OPT_RETAIN_LONG_MODIFIED_DATES)->meaning,
		"Retain Longitudinal Temporal Information Modified Dates Option");
	assert_null(fdn_deid__cid7050_option(FDN_DEID_OPT_COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_safe_private_table),
		cmocka_unit_test(test_spot_rows),
		cmocka_unit_test(test_repeating_groups),
		cmocka_unit_test(test_private_rule),
		cmocka_unit_test(test_option_precedence),
		cmocka_unit_test(test_action_codes),
		cmocka_unit_test(test_composite_readme),
		cmocka_unit_test(test_composite_rules),
		cmocka_unit_test(test_composite_all_entries),
		cmocka_unit_test(test_safe_private),
		cmocka_unit_test(test_cid7050),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
