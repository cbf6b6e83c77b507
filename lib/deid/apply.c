/*
 * fdn_deid_apply: the burned-in annotation guard, one edit walk that
 * carries out the profile's decisions on every element at any depth, the
 * removal of Private Creators whose blocks lost every element, and the
 * PS3.15 E.1.1 marking of the result.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include "deid_private.h"
#include "dicom/charset.h"
#include "dicom/edit_private.h"

typedef struct creator_rec {
	uint32_t tag;
	size_t depth;
	size_t entry;    /* its report entry, relabelled if it goes */
	bool used;
} creator_rec;

typedef struct apply_ctx {
	const fdn_deid_profile *p;
	fdn_deid_report *report;
	int sop_index;
	fdn_buf pid;          /* top-level Patient ID, UTF-8 */
	long offset;          /* days, for Modified Dates */
	creator_rec *creators;
	size_t ncreators, creator_cap;
	size_t ordinal;       /* second walk: creators seen */
	fdn_buf tmp;
} apply_ctx;

/* --- the burned-in annotation guard --------------------------------------------- */

/* Modalities whose images usually carry text or faces in the pixels:
 * ultrasound (patient name in the scan area), screen captures and scanned
 * documents, and visible-light photography (faces, labels). */
static const char *const suspect_modalities[] = {
	"US", "IVUS", "OT", "SC", "DOC", "XC", "ES", "GM", "SM", "OP",
};

/* SOP Class UID roots of the same kinds: Secondary Capture (.7 and its
 * multi-frame children), Ultrasound (.6.x, .3.1), Encapsulated Documents
 * (.104.x), Visible Light (.77.1.x). */
static const char *const suspect_sop_roots[] = {
	"1.2.840.10008.5.1.4.1.1.7",
	"1.2.840.10008.5.1.4.1.1.6",
	"1.2.840.10008.5.1.4.1.1.3.1",
	"1.2.840.10008.5.1.4.1.1.104",
	"1.2.840.10008.5.1.4.1.1.77.1",
};

static bool uid_under(const char *uid, const char *root)
{
	size_t n = strlen(root);

	return strncmp(uid, root, n) == 0 && (uid[n] == '\0' || uid[n] == '.');
}

static bool suspect(const fdn_instance_info *info)
{
	for (size_t i = 0; i < sizeof(suspect_modalities) / sizeof(*suspect_modalities); i++)
		if (strcmp(info->modality, suspect_modalities[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof(suspect_sop_roots) / sizeof(*suspect_sop_roots); i++)
		if (uid_under(info->sop_class_uid, suspect_sop_roots[i]))
			return true;
	return false;
}

static int refuse(apply_ctx *c, const char *reason)
{
	int rc = fdn_deid__report_refuse(c->report, reason);

	if (rc != 0)
		return rc;
	return fdn__error_set(FDN_EPHI, FDN_ERRCLASS_DEID, "de-identification refused: %s",
		reason);
}

static int guard(apply_ctx *c, const fdn_instance_info *info)
{
	char reason[256];

	if (c->p->allow_burned_in)
		return 0;
	if (info->burned_in_annotation == FDN_YES)
		return refuse(c, "Burned In Annotation (0028,0301) is YES");
	if (info->recognizable_visual_features == FDN_YES)
		return refuse(c, "Recognizable Visual Features (0028,0302) is YES");
	if (info->burned_in_annotation != FDN_NO && suspect(info)) {
		snprintf(reason, sizeof(reason),
			"Burned In Annotation (0028,0301) is not NO, and modality '%.16s' / "
			"SOP Class %.64s commonly carries burned-in text", info->modality,
			info->sop_class_uid);
		return refuse(c, reason);
	}
	return 0;
}

/* --- replacement values ------------------------------------------------------------ */

static size_t binary_size(const char *vr)
{
	static const struct { const char vr[3]; unsigned char size; } sizes[] = {
		{ "US", 2 }, { "SS", 2 }, { "OW", 2 }, { "OB", 2 }, { "UN", 2 },
		{ "UL", 4 }, { "SL", 4 }, { "FL", 4 }, { "AT", 4 }, { "OF", 4 }, { "OL", 4 },
		{ "FD", 8 }, { "SV", 8 }, { "UV", 8 }, { "OD", 8 }, { "OV", 8 },
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++)
		if (strcmp(vr, sizes[i].vr) == 0)
			return sizes[i].size;
	return 2;
}

/* A non-empty value consistent with the VR that says nothing. */
static int dummy_value(apply_ctx *c, const fdn_edit_element *e, fdn_buf *out)
{
	static const struct { const char vr[3]; const char *value; } texts[] = {
		{ "DA", "19000101" }, { "DT", "19000101000000" }, { "TM", "000000" },
		{ "AS", "000Y" }, { "DS", "0" }, { "IS", "0" }, { "UR", "urn:fednode:anonymized" },
	};
	static const char zeros[8] = { 0 };

	if (strcmp(e->vr, "UI") == 0)
		return e->length ? fdn_deid__uid_remap(out, c->p, e->value, e->length) :
			fdn_buf__puts(out, "2.25.0");
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++)
		if (strcmp(e->vr, texts[i].vr) == 0)
			return fdn_buf__puts(out, texts[i].value);
	if (fdn_deid__vr_is_text(e->vr))
		return fdn_buf__puts(out, "ANONYMIZED");
	return fdn_buf__put(out, zeros, binary_size(e->vr));
}

/* Every backslash-separated UID replaced; empty values stay empty. */
static int remap_uids(apply_ctx *c, const fdn_edit_element *e, fdn_buf *out)
{
	size_t start = 0;

	while (start <= e->length) {
		const char *bs = memchr(e->value + start, '\\', e->length - start);
		size_t end = bs ? (size_t)(bs - e->value) : e->length;
		int rc = 0;

		if (start > 0)
			rc = fdn_buf__put(out, "\\", 1);
		if (rc == 0 && end > start && e->value[start] != '\0' && e->value[start] != ' ')
			rc = fdn_deid__uid_remap(out, c->p, e->value + start, end - start);
		if (rc != 0)
			return rc;
		start = end + 1;
	}
	return 0;
}

static int clean_text(apply_ctx *c, const fdn_edit_element *e, fdn_edit_action *act,
	fdn_buf *out)
{
	fdn_buf utf8 = FDN_BUF_INIT, cleaned = FDN_BUF_INIT;
	int rc;

	*act = FDN_EDIT_EMPTY;
	if (!c->p->clean || !fdn_deid__vr_is_text(e->vr) || e->length == 0)
		return 0;
	fdn_buf__clear(&c->tmp);
	rc = fdn_deid__path_string(&c->tmp, e->path, e->depth);
	if (rc == 0)
		rc = fdn_charset__to_utf8(&utf8, e->scs, e->value, e->length, e->vr);
	/* The host sees the value, not its padding. */
	while (rc == 0 && utf8.size && (utf8.ptr[utf8.size - 1] == ' ' ||
				       utf8.ptr[utf8.size - 1] == '\0'))
		utf8.ptr[--utf8.size] = '\0';
	if (rc == 0) {
		rc = c->p->clean(&cleaned, c->tmp.ptr, e->vr, utf8.ptr ? utf8.ptr : "",
			c->p->clean_payload);
		if (rc != 0)
			rc = fdn__error_callback(rc, "de-identification clean");
	}
	/* Text the character set cannot hold is emptied, never kept. */
	if (rc == 0 && cleaned.size > 0 &&
	    fdn_charset__from_utf8(out, e->scs, cleaned.ptr, cleaned.size, e->vr) == 0)
		*act = FDN_EDIT_REPLACE;
	fdn_buf_dispose(&utf8);
	fdn_buf_dispose(&cleaned);
	return rc;
}

static int pseudonym_value(apply_ctx *c, const fdn_edit_element *e, fdn_edit_action *act,
	fdn_buf *out)
{
	bool pn = strcmp(e->vr, "PN") == 0;
	bool top_patient = e->depth == 0 &&
		(e->tag == 0x00100020u || e->tag == 0x00100010u);
	const char *id = top_patient ? c->pid.ptr : e->value;
	size_t len = top_patient ? c->pid.size : e->length;
	int rc;

	if (!fdn_deid__vr_is_text(e->vr)) {
		*act = FDN_EDIT_REPLACE;
		return dummy_value(c, e, out);
	}
	*act = FDN_EDIT_EMPTY;
	if (!id || len == 0)
		return 0;
	*act = FDN_EDIT_REPLACE;
	rc = fdn_deid__pseudonym(out, c->p, id, len, strcmp(e->vr, "SH") == 0 ||
		strcmp(e->vr, "AE") == 0 || strcmp(e->vr, "CS") == 0);
	return rc == 0 && pn ? fdn_buf__puts(out, "^") : rc;
}

/* --- the walk ------------------------------------------------------------------------ */

static int note_creator(apply_ctx *c, const fdn_edit_element *e)
{
	if (c->ncreators == c->creator_cap) {
		size_t ncap = c->creator_cap ? c->creator_cap * 2 : 16;
		creator_rec *n = fdn__reallocarray(c->creators, ncap, sizeof(*n));
		if (!n)
			return fdn__error_oom();
		c->creators = n;
		c->creator_cap = ncap;
	}
	c->creators[c->ncreators].tag = e->tag;
	c->creators[c->ncreators].depth = e->depth;
	c->creators[c->ncreators].entry = c->report->entry_count;
	c->creators[c->ncreators].used = false;
	c->ncreators++;
	return 0;
}

/*
 * A private element that stays keeps its creator.  The element's own
 * item holds that creator (the walker found it there), and no other
 * item's creator for the same block can have been visited since at the
 * same depth, so the latest match is the right one.
 */
static void use_creator(apply_ctx *c, const fdn_edit_element *e)
{
	uint32_t ctag = (e->tag & 0xFFFF0000u) | ((e->tag >> 8) & 0xFFu);

	for (size_t i = c->ncreators; i-- > 0;) {
		if (c->creators[i].tag == ctag && c->creators[i].depth == e->depth) {
			c->creators[i].used = true;
			return;
		}
	}
}

static int shift_value(apply_ctx *c, const fdn_edit_element *e, fdn_edit_action *act,
	fdn_buf *out, int *kind)
{
	int rc = fdn_deid__shift_dates(out, e->value ? e->value : "", e->length,
		strcmp(e->vr, "DT") == 0, c->offset);

	if (rc == FDN_EFORMAT) {
		/* An unparsable date cannot be shifted, and keeping it would
		 * give the real date away. */
		*act = FDN_EDIT_EMPTY;
		*kind = FDN_DEID_EMPTIED;
		return 0;
	}
	*act = FDN_EDIT_REPLACE;
	return rc;
}

static int carry_out(apply_ctx *c, const fdn_edit_element *e, fdn_deid_op op,
	fdn_edit_action *act, fdn_buf *out, int *kind)
{
	switch (op) {
	case FDN_DEID_OP_DESCEND:
		*act = FDN_EDIT_DESCEND;
		return 0;
	case FDN_DEID_OP_REMOVE:
		*act = FDN_EDIT_REMOVE;
		*kind = FDN_DEID_REMOVED;
		return 0;
	case FDN_DEID_OP_EMPTY:
		*act = FDN_EDIT_EMPTY;
		*kind = FDN_DEID_EMPTIED;
		return 0;
	case FDN_DEID_OP_DUMMY:
		*act = FDN_EDIT_REPLACE;
		*kind = FDN_DEID_DUMMIED;
		return dummy_value(c, e, out);
	case FDN_DEID_OP_CLEAN:
		*kind = FDN_DEID_CLEANED;
		return clean_text(c, e, act, out);
	case FDN_DEID_OP_UID:
		*kind = FDN_DEID_UID_REPLACED;
		*act = e->length ? FDN_EDIT_REPLACE : FDN_EDIT_KEEP;
		return e->length ? remap_uids(c, e, out) : 0;
	case FDN_DEID_OP_SHIFT:
		*kind = FDN_DEID_DATE_SHIFTED;
		return shift_value(c, e, act, out, kind);
	case FDN_DEID_OP_PSEUDO:
		*kind = FDN_DEID_PSEUDONYMIZED;
		return pseudonym_value(c, e, act, out);
	case FDN_DEID_OP_CREATOR:
		*act = FDN_EDIT_KEEP;
		return note_creator(c, e);
	default:
		*act = FDN_EDIT_KEEP;
		return 0;
	}
}

static int apply_cb(const fdn_edit_element *e, fdn_edit_action *act, fdn_buf *out,
	void *payload)
{
	apply_ctx *c = payload;
	fdn_deid_decision d;
	int kind = FDN_DEID_KEPT, rc;

	d = fdn_deid__decide(c->p, c->sop_index, e->path, e->depth, e->vr, e->creator);
	if ((rc = carry_out(c, e, d.op, act, out, &kind)) != 0)
		return rc;
	if (((e->tag >> 16) & 1u) && d.op != FDN_DEID_OP_CREATOR && *act != FDN_EDIT_REMOVE)
		use_creator(c, e);
	return fdn_deid__report_add(c->report, e->path, e->depth, d.code, kind);
}

/* Second walk: the creators of blocks that lost every element go. */
static int creators_cb(const fdn_edit_element *e, fdn_edit_action *act, fdn_buf *out,
	void *payload)
{
	apply_ctx *c = payload;
	uint16_t el = (uint16_t)e->tag;
	creator_rec *r;

	(void)out;
	*act = strcmp(e->vr, "SQ") == 0 ? FDN_EDIT_DESCEND : FDN_EDIT_KEEP;
	if (!((e->tag >> 16) & 1u) || el < 0x10 || el > 0xFF)
		return 0;
	r = c->ordinal < c->ncreators ? &c->creators[c->ordinal++] : NULL;
	if (!r || r->tag != e->tag || r->depth != e->depth)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_DEID,
			"de-identification: private creators changed between passes");
	if (r->used)
		return 0;
	*act = FDN_EDIT_REMOVE;
	if (!c->report->counts_only)
		c->report->entries[r->entry].code = "X";
	c->report->counts[FDN_DEID_KEPT]--;
	c->report->counts[FDN_DEID_REMOVED]++;
	return 0;
}

static int drop_unused_creators(apply_ctx *c, fdn_dataset *ds)
{
	bool any = false;

	for (size_t i = 0; i < c->ncreators; i++)
		any = any || !c->creators[i].used;
	return any ? fdn_dicom__edit(ds, creators_cb, c) : 0;
}

/* --- marking (PS3.15 E.1.1, PS3.3 C.12.1) ------------------------------------------- */

static int add_code(fdn_dataset *ds, size_t i, const fdn_deid_code *code)
{
	char path[96];
	int rc;

	snprintf(path, sizeof(path), "(0012,0064)[%zu]/(0008,0100)", i);
	if ((rc = fdn_dataset_set_string(ds, path, code->value)) != 0)
		return rc;
	snprintf(path, sizeof(path), "(0012,0064)[%zu]/(0008,0102)", i);
	if ((rc = fdn_dataset_set_string(ds, path, code->scheme)) != 0)
		return rc;
	snprintf(path, sizeof(path), "(0012,0064)[%zu]/(0008,0104)", i);
	return fdn_dataset_set_string(ds, path, code->meaning);
}

static int method_text(fdn_buf *out, const fdn_deid_profile *p)
{
	int rc = fdn_buf__printf(out, "libfednode %s\\PS3.15 2026c\\%s", fdn_version_string(),
		fdn_deid__cid7050_basic()->meaning);

	for (int o = 0; rc == 0 && o < FDN_DEID_OPT_COUNT; o++)
		if (p->table_mask & FDN_DEID_OPT_BIT(o))
			rc = fdn_buf__printf(out, "\\%s",
				fdn_deid__cid7050_option((fdn_deid_option)o)->meaning);
	if (rc == 0 && p->rule_count > 0)
		rc = fdn_buf__puts(out, "\\Site rules");
	if (rc == 0 && p->clean)
		rc = fdn_buf__puts(out, "\\Host text cleaning");
	return rc;
}

static int mark(const fdn_deid_profile *p, fdn_dataset *ds)
{
	fdn_buf text = FDN_BUF_INIT;
	size_t n = 0;
	int rc = fdn_dataset_set_string(ds, "(0012,0062)", "YES");

	if (rc == 0 && (rc = method_text(&text, p)) == 0)
		rc = fdn_dataset_set_string(ds, "(0012,0063)", text.ptr);
	fdn_buf_dispose(&text);
	if (rc == 0 && fdn_dataset_contains(ds, "(0012,0064)") == 1)
		rc = fdn_dataset_remove(ds, "(0012,0064)");
	if (rc == 0)
		rc = add_code(ds, n++, fdn_deid__cid7050_basic());
	for (int o = 0; rc == 0 && o < FDN_DEID_OPT_COUNT; o++)
		if (p->table_mask & FDN_DEID_OPT_BIT(o))
			rc = add_code(ds, n++, fdn_deid__cid7050_option((fdn_deid_option)o));
	if (rc == 0)
		rc = fdn_dataset_set_string(ds, "(0028,0303)",
			(p->options & FDN_DEID_RETAIN_LONG_MODIFIED_DATES) ? "MODIFIED" :
			(p->options & FDN_DEID_RETAIN_LONG_FULL_DATES) ? "UNMODIFIED" : "REMOVED");
	return rc;
}

/* --- entry point ---------------------------------------------------------------------- */

static int prepare(apply_ctx *c, fdn_dataset *ds)
{
	fdn_instance_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	info.version = FDN_INSTANCE_INFO_VERSION;
	if ((rc = fdn_dataset_instance_info(&info, ds)) != 0)
		return rc;
	if ((rc = guard(c, &info)) != 0)
		return rc;
	c->sop_index = fdn_deid__sop_class_index(info.sop_class_uid);
	rc = fdn_buf__put(&c->pid, info.patient_id, strlen(info.patient_id));
	if (rc == 0)
		rc = fdn_buf__put(&c->pid, "", 0);
	if (rc == 0 && (c->p->options & FDN_DEID_RETAIN_LONG_MODIFIED_DATES))
		c->offset = fdn_deid__date_offset(c->p, c->pid.ptr);
	return rc;
}

static int run(apply_ctx *c, fdn_dataset *ds)
{
	int rc = prepare(c, ds);

	if (rc == 0)
		rc = fdn_dicom__edit(ds, apply_cb, c);
	if (rc == 0)
		rc = drop_unused_creators(c, ds);
	if (rc == 0)
		rc = mark(c->p, ds);
	return rc;
}

int fdn_deid_apply(fdn_deid_report **report_out, const fdn_deid_profile *profile,
	fdn_dataset *ds)
{
	apply_ctx c;
	int rc;

	if (report_out)
		*report_out = NULL;
	FDN__CHECK_ARG(profile, "profile");
	FDN__CHECK_ARG(ds, "ds");
	memset(&c, 0, sizeof(c));
	c.p = profile;
	if ((rc = fdn_deid__report_new(&c.report)) == 0)
		c.report->counts_only = report_out == NULL;
	if (rc != 0)
		return rc;
	rc = run(&c, ds);
	fdn__free(c.creators);
	fdn_buf_dispose(&c.pid);
	fdn_buf_dispose(&c.tmp);
	if (report_out && (rc == 0 || rc == FDN_EPHI))
		*report_out = c.report;
	else
		fdn_deid_report_free(c.report);
	return rc;
}
