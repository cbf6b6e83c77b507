/*
 * The structural guard (contract in guard.h): a bounds-checked walk over
 * the element structure of a DICOM input, PS3.5 §7 and PS3.10 §7, run
 * before GDCM parses it.
 *
 * Strictness follows what Debian's GDCM 3.0.21 was seen to do with
 * crafted inputs: it abort()s on a truncated File Meta group, a File Meta
 * group with no dataset after it, an invalid VR, a partial element header
 * at the end, an element or item longer than what remains, and an item of
 * odd length, so all of those are refused.  It copes with an inconsistent
 * (0002,0000) group length, a File Meta group written in implicit VR, a
 * dataset written in implicit VR under an explicit-VR transfer syntax, and
 * bytes after the end of a deflate stream, so the walk tolerates exactly
 * those.
 *
 * The walk is one loop over an explicit stack of containers (the dataset,
 * sequences, items, encapsulated Pixel Data); each container knows where
 * it must end, so every length is checked against the bytes its container
 * has left, never against what happens to be in memory.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#define ZLIB_CONST
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "guard.h"
#include "../core/core_private.h"

#define TAG(g, e) ((uint32_t)(g) << 16 | (uint32_t)(e))
#define GROUP(t) ((unsigned)((t) >> 16))
#define ELEMENT(t) ((unsigned)((t) & 0xFFFFu))
#define ITEM TAG(0xFFFE, 0xE000)
#define ITEM_END TAG(0xFFFE, 0xE00D)
#define SEQ_END TAG(0xFFFE, 0xE0DD)
#define PIXEL_DATA TAG(0x7FE0, 0x0010)
#define TRANSFER_SYNTAX TAG(0x0002, 0x0010)
#define MEDIA_STORAGE_SOP_CLASS TAG(0x0002, 0x0002)
#define UNDEFINED_LENGTH 0xFFFFFFFFu
#define MAGIC_OFFSET 128
#define MAGIC_END 132
#define HEADER 8        /* tag + 4-byte length, or tag + VR + 2-byte length */
#define LONG_HEADER 12  /* tag + VR + 2 reserved bytes + 4-byte length */
#define UID_MAX 64
#define STOPPED 1       /* a step reached Pixel Data with FDN_GUARD_STOP_AT_PIXELS */
#define DICOMDIR_SOP_CLASS "1.2.840.10008.1.3.10"

/*
 * GDCM 3.0.21 reads an implicit VR dataset that has no (0002,0000) group
 * length (no File Meta group, or one without it, or implicit VR under an
 * explicit-VR transfer syntax) in time that grows about 5.8-fold with each
 * undefined-length sequence around an item: measured 0.35 s for a chain
 * nine deep, 2.1 s for ten, more than a minute for twelve, and 20 s for
 * seven levels of three items each.  Each item is charged SLOW_FACTOR to
 * the power of the undefined-length sequences around it, and the input is
 * refused past SLOW_BUDGET, about a second of GDCM's time.
 */
#define SLOW_FACTOR 6
#define SLOW_BUDGET 20000000u

#define VR(a, b) ((uint16_t)((a) << 8 | (b)))

/* The per-element helpers are used from several places, so compilers
 * leave them out of line; inlined, the walk costs a third less. */
#if defined(__GNUC__)
# define HOT inline __attribute__((always_inline))
#else
# define HOT inline
#endif

enum { ENC_IMPLICIT = FDN_GUARD_IMPLICIT_LE, ENC_LE = FDN_GUARD_EXPLICIT_LE,
	ENC_BE = FDN_GUARD_EXPLICIT_BE, ENC_DEFLATED = FDN_GUARD_DEFLATED_LE };

/* --- value representations (PS3.5 Table 6.2-1) ---------------------------- */

enum { VR_NONE, VR_SHORT, VR_LONG };
/* Rows of 32 so that one comparison bounds both letters. */
#define VRI(a, b) (((a) - 'A') << 5 | ((b) - 'A'))

static const uint8_t vr_forms[32 * 32] = {
	[VRI('A', 'E')] = VR_SHORT, [VRI('A', 'S')] = VR_SHORT,
	[VRI('A', 'T')] = VR_SHORT, [VRI('C', 'S')] = VR_SHORT,
	[VRI('D', 'A')] = VR_SHORT, [VRI('D', 'S')] = VR_SHORT,
	[VRI('D', 'T')] = VR_SHORT, [VRI('F', 'D')] = VR_SHORT,
	[VRI('F', 'L')] = VR_SHORT, [VRI('I', 'S')] = VR_SHORT,
	[VRI('L', 'O')] = VR_SHORT, [VRI('L', 'T')] = VR_SHORT,
	[VRI('P', 'N')] = VR_SHORT, [VRI('S', 'H')] = VR_SHORT,
	[VRI('S', 'L')] = VR_SHORT, [VRI('S', 'S')] = VR_SHORT,
	[VRI('S', 'T')] = VR_SHORT, [VRI('T', 'M')] = VR_SHORT,
	[VRI('U', 'I')] = VR_SHORT, [VRI('U', 'L')] = VR_SHORT,
	[VRI('U', 'S')] = VR_SHORT,
	/* PS3.5 Table 7.1-1: two reserved bytes, then a 32-bit length */
	[VRI('O', 'B')] = VR_LONG, [VRI('O', 'D')] = VR_LONG,
	[VRI('O', 'F')] = VR_LONG, [VRI('O', 'L')] = VR_LONG,
	[VRI('O', 'V')] = VR_LONG, [VRI('O', 'W')] = VR_LONG,
	[VRI('S', 'Q')] = VR_LONG, [VRI('S', 'V')] = VR_LONG,
	[VRI('U', 'C')] = VR_LONG, [VRI('U', 'N')] = VR_LONG,
	[VRI('U', 'R')] = VR_LONG, [VRI('U', 'T')] = VR_LONG,
	[VRI('U', 'V')] = VR_LONG,
};

static HOT int vr_form(const uint8_t *vr)
{
	unsigned a = (unsigned)vr[0] - 'A', b = (unsigned)vr[1] - 'A';

	return (a | b) < 32 ? vr_forms[a << 5 | b] : VR_NONE;
}

static HOT uint16_t get16(const uint8_t *p, bool be)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static HOT uint32_t get32(const uint8_t *p, bool be)
{
	if (be)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* --- transfer syntaxes ------------------------------------------------------ */

/* Suffixes after "1.2.840.10008.1.2".  Every encapsulated syntax is
 * explicit VR little endian at the element level, which is all the walk
 * needs; whether GDCM can decode the pixels is not its concern. */
static const struct {
	const char *suffix;
	int encoding;
} transfer_syntaxes[] = {
	{ "", ENC_IMPLICIT },
	{ ".1", ENC_LE },
	{ ".2", ENC_BE },
	{ ".1.99", ENC_DEFLATED },
	{ ".1.98", ENC_LE },           /* encapsulated uncompressed */
	{ ".5", ENC_LE },              /* RLE */
	{ ".4.50", ENC_LE }, { ".4.51", ENC_LE }, { ".4.52", ENC_LE },
	{ ".4.53", ENC_LE }, { ".4.54", ENC_LE }, { ".4.55", ENC_LE },
	{ ".4.56", ENC_LE }, { ".4.57", ENC_LE }, { ".4.58", ENC_LE },
	{ ".4.59", ENC_LE }, { ".4.60", ENC_LE }, { ".4.61", ENC_LE },
	{ ".4.62", ENC_LE }, { ".4.63", ENC_LE }, { ".4.64", ENC_LE },
	{ ".4.65", ENC_LE }, { ".4.66", ENC_LE }, { ".4.70", ENC_LE },
	{ ".4.80", ENC_LE }, { ".4.81", ENC_LE },          /* JPEG-LS */
	{ ".4.90", ENC_LE }, { ".4.91", ENC_LE },          /* JPEG 2000 */
	{ ".4.92", ENC_LE }, { ".4.93", ENC_LE },
	{ ".4.94", ENC_LE }, { ".4.95", ENC_DEFLATED },    /* JPIP */
	{ ".4.100", ENC_LE }, { ".4.101", ENC_LE },        /* MPEG-2 */
	{ ".4.102", ENC_LE }, { ".4.103", ENC_LE },        /* MPEG-4 */
	{ ".4.104", ENC_LE }, { ".4.105", ENC_LE }, { ".4.106", ENC_LE },
	{ ".4.107", ENC_LE }, { ".4.108", ENC_LE },        /* HEVC */
	{ ".4.100.1", ENC_LE }, { ".4.101.1", ENC_LE }, { ".4.102.1", ENC_LE },
	{ ".4.103.1", ENC_LE }, { ".4.104.1", ENC_LE }, { ".4.105.1", ENC_LE },
	{ ".4.106.1", ENC_LE },
	{ ".4.110", ENC_LE }, { ".4.111", ENC_LE }, { ".4.112", ENC_LE }, /* JPEG XL */
	{ ".4.201", ENC_LE }, { ".4.202", ENC_LE }, { ".4.203", ENC_LE }, /* HTJ2K */
	{ ".4.204", ENC_LE }, { ".4.205", ENC_DEFLATED },
	{ ".8.1", ENC_LE },            /* deflated image frames */
};

static int transfer_syntax_encoding(const char *uid)
{
	static const char root[] = "1.2.840.10008.1.2";
	size_t i;

	if (strncmp(uid, root, sizeof(root) - 1) != 0)
		return -1;
	uid += sizeof(root) - 1;
	for (i = 0; i < sizeof(transfer_syntaxes) / sizeof(transfer_syntaxes[0]); i++)
		if (strcmp(uid, transfer_syntaxes[i].suffix) == 0)
			return transfer_syntaxes[i].encoding;
	return -1;
}

/* --- walk state --------------------------------------------------------------- */

enum { FRAME_DATASET, FRAME_SEQUENCE, FRAME_FRAGMENTS };

/* A container being walked: the dataset, an item's dataset, a sequence or
 * encapsulated Pixel Data.  A defined-length container ends exactly at
 * @c end; an undefined-length one must meet its delimiter before @c end,
 * the bound it inherits from its parent. */
struct frame {
	uint64_t start;   /* offset of the element or item that opened it */
	uint64_t end;
	uint32_t tag;
	uint8_t kind;
	uint8_t enc;
	bool defined;
	uint8_t undefined_sequences; /* undefined-length sequences around it, itself included */
};

struct walk {
	const uint8_t *data;
	size_t size;            /* bytes in memory */
	uint64_t total;         /* bytes in the input (or the inflated dataset) */
	const char *name;
	const char *where;      /* "" or " in the inflated dataset" */
	unsigned int flags;
	fdn_guard_result *out;
	int top;                /* index of the innermost frame */
	int depth;              /* sequences open */
	bool slow;              /* GDCM's slow implicit VR path: see SLOW_FACTOR */
	bool group_length;      /* the File Meta group has (0002,0000) */
	uint32_t slow_cost;
	/* each open sequence adds at most two frames: itself and one item */
	struct frame stack[2 * FDN_GUARD_MAX_DEPTH + 2];
	/* the last element tag seen in each frame (0: none yet) */
	uint32_t last_tag[2 * FDN_GUARD_MAX_DEPTH + 2];
};

/* An element, item or delimiter header. */
struct elem {
	uint32_t tag;
	uint32_t len;
	uint16_t vr;      /* 0 in implicit VR and for items and delimiters */
	uint8_t hlen;
};

/* --- errors ------------------------------------------------------------------- */

static const char *tag_noun(uint32_t tag)
{
	switch (tag) {
	case ITEM: return "item";
	case ITEM_END: return "item delimiter";
	case SEQ_END: return "sequence delimiter";
	default: return "element";
	}
}

static int fail(const struct walk *w, uint64_t off, const char *fmt, ...) FDN__PRINTF(3, 4);
static int fail_at(const struct walk *w, uint32_t tag, uint64_t off, const char *fmt, ...)
	FDN__PRINTF(4, 5);

/* "<name>: <what> at byte offset <off>" */
static int fail(const struct walk *w, uint64_t off, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"%s: %s at byte offset %" PRIu64 "%s", w->name, what, off, w->where);
}

/* "<name>: element (gggg,eeee) at byte offset <off>: <what>" */
static int fail_at(const struct walk *w, uint32_t tag, uint64_t off, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"%s: %s (%04X,%04X) at byte offset %" PRIu64 "%s: %s", w->name,
		tag_noun(tag), GROUP(tag), ELEMENT(tag), off, w->where, what);
}

static int not_dicom(const struct walk *w)
{
	if (w->total == 0)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"%s: not a DICOM file (empty)", w->name);
	if (w->total < HEADER)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"%s: not a DICOM file (only %" PRIu64 " bytes)", w->name, w->total);
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"%s: not a DICOM file (no DICM magic at byte offset 128, and byte offset 0 "
		"starts neither a File Meta group nor a group 0008 element)", w->name);
}

/* FDN_EBUFS for bytes up to @p end, and for the rest of the top-level
 * element being walked as well, to save the caller a few round trips. */
static int need_more(struct walk *w, uint64_t end)
{
	uint64_t want = end;

	if (w->top >= 1 && w->stack[1].defined && w->stack[1].end > want)
		want = w->stack[1].end;
	w->out->needed = want;
	return fdn__error_set(FDN_EBUFS, FDN_ERRCLASS_DICOM,
		"%s: %" PRIu64 " bytes of input needed, %zu available", w->name, want, w->size);
}

/* Bytes [0, end) must be in memory. */
static HOT int need(struct walk *w, uint64_t end)
{
	return end <= w->size ? 0 : need_more(w, end);
}

static int truncated(const struct walk *w, const struct frame *f, uint64_t pos, unsigned hlen)
{
	uint64_t room = f->end - pos;

	if (f->end == w->total)
		return fail(w, pos, "truncated element header (%" PRIu64 " of %u bytes)", room, hlen);
	return fail(w, pos, "element header does not fit in its enclosing %s "
		"(%" PRIu64 " of %u bytes left before byte offset %" PRIu64 ")",
		f->kind == FRAME_DATASET ? "item" : "sequence", room, hlen, f->end);
}

static int overrun(const struct walk *w, const struct frame *f, uint64_t pos, const struct elem *e)
{
	return fail_at(w, e->tag, pos, "length %" PRIu32 " exceeds the %" PRIu64 " bytes that remain%s",
		e->len, f->end - pos - e->hlen,
		f->end == w->total ? "" : " in its enclosing item or sequence");
}

static int bad_vr(const struct walk *w, uint32_t tag, uint64_t pos, const uint8_t *vr)
{
	if (vr[0] > 0x20 && vr[0] < 0x7F && vr[1] > 0x20 && vr[1] < 0x7F)
		return fail_at(w, tag, pos, "bad VR \"%c%c\"", vr[0], vr[1]);
	return fail_at(w, tag, pos, "bad VR (bytes 0x%02X 0x%02X)", vr[0], vr[1]);
}

static int unclosed(const struct walk *w, const struct frame *f)
{
	const char *what = f->kind == FRAME_DATASET ? "item delimiter" : "sequence delimiter";

	if (f->end == w->total)
		return fail_at(w, f->tag, f->start,
			"undefined length, but the input ends (truncated) at byte offset %" PRIu64
			" before its %s", f->end, what);
	return fail_at(w, f->tag, f->start, "undefined length, but no %s before byte offset %"
		PRIu64 " where its enclosing item or sequence ends", what, f->end);
}

/* --- headers ------------------------------------------------------------------ */

/* Reads the first 8 bytes of a header: the tag, and the length as it is
 * in implicit VR and for items and delimiters. */
static HOT int read_tag(struct walk *w, const struct frame *f, uint64_t pos, struct elem *e)
{
	const uint8_t *p;
	bool be = f->enc == ENC_BE;
	int rc;

	if (f->end - pos < HEADER)
		return truncated(w, f, pos, HEADER);
	if ((rc = need(w, pos + HEADER)) != 0)
		return rc;
	p = w->data + pos;
	e->tag = (uint32_t)get16(p, be) << 16 | get16(p + 2, be);
	e->len = get32(p + 4, be);
	e->vr = 0;
	e->hlen = HEADER;
	return 0;
}

/* Completes an explicit-VR header (PS3.5 Tables 7.1-1 and 7.1-2). */
static HOT int read_vr(struct walk *w, const struct frame *f, uint64_t pos, struct elem *e)
{
	const uint8_t *p = w->data + pos;
	bool be = f->enc == ENC_BE;
	int form, rc;

	if (f->enc == ENC_IMPLICIT)
		return 0;
	form = vr_form(p + 4);
	if (form == VR_NONE)
		return bad_vr(w, e->tag, pos, p + 4);
	e->vr = VR(p[4], p[5]);
	if (form == VR_SHORT) {
		e->len = get16(p + 6, be);
		return 0;
	}
	if (f->end - pos < LONG_HEADER)
		return truncated(w, f, pos, LONG_HEADER);
	if ((rc = need(w, pos + LONG_HEADER)) != 0)
		return rc;
	e->len = get32(w->data + pos + 8, be);
	e->hlen = LONG_HEADER;
	return 0;
}

/* --- containers --------------------------------------------------------------- */

/* Opens a container at the header at *pos and moves past that header. */
static int enter(struct walk *w, int kind, int enc, const struct elem *e, uint64_t *pos,
	uint64_t end, bool defined)
{
	struct frame *f;

	if (kind != FRAME_DATASET) {
		if (w->depth == FDN_GUARD_MAX_DEPTH)
			return fail_at(w, e->tag, *pos, "sequences nested deeper than %d",
				FDN_GUARD_MAX_DEPTH);
		w->depth++;
	}
	f = &w->stack[w->top + 1];
	f->undefined_sequences = w->stack[w->top].undefined_sequences +
		(kind == FRAME_SEQUENCE && !defined);
	w->top++;
	f->start = *pos;
	f->end = end;
	f->tag = e->tag;
	f->kind = (uint8_t)kind;
	f->enc = (uint8_t)enc;
	f->defined = defined;
	w->last_tag[w->top] = 0;
	*pos += e->hlen;
	return 0;
}

static void leave(struct walk *w)
{
	if (w->stack[w->top].kind != FRAME_DATASET)
		w->depth--;
	w->top--;
}

/* A sequence or item delimiter that is where it belongs. */
static int close_undefined(struct walk *w, uint64_t *pos, const struct elem *e)
{
	if (e->len != 0)
		return fail_at(w, e->tag, *pos, "length %" PRIu32 ", where a delimiter has 0", e->len);
	*pos += HEADER;
	leave(w);
	return 0;
}

static int open_undefined(struct walk *w, const struct frame *f, uint64_t *pos, const struct elem *e)
{
	int kind = FRAME_SEQUENCE, enc = f->enc;

	if (e->tag == PIXEL_DATA && (e->vr == 0 || e->vr == VR('O', 'B') || e->vr == VR('O', 'W')))
		kind = FRAME_FRAGMENTS;
	else if (e->vr == VR('U', 'N'))
		enc = ENC_IMPLICIT; /* CP-246: a sequence whose VR was lost is implicit VR LE */
	else if (e->vr != 0 && e->vr != VR('S', 'Q'))
		return fail_at(w, e->tag, *pos, "undefined length with VR %c%c (only SQ, UN and "
			"encapsulated Pixel Data may have one)", e->vr >> 8, e->vr & 0xFF);
	/* In implicit VR an undefined length can only be a sequence. */
	return enter(w, kind, enc, e, pos, f->end, false);
}

/*
 * In implicit VR (and in UN, whose value may be a sequence in implicit
 * VR) only the data dictionary tells a sequence apart, and GDCM parses the
 * value as one when its dictionary says SQ; so a value that starts with an
 * item tag is walked as a sequence.  Pixel data groups are exempt: their
 * values are large and never sequences.
 */
static bool may_hide_sequence(const struct elem *e)
{
	return (e->vr == 0 || e->vr == VR('U', 'N')) && e->len >= HEADER &&
	       GROUP(e->tag) != 0x7FE0;
}

static int open_defined(struct walk *w, const struct frame *f, uint64_t *pos, const struct elem *e)
{
	static const uint8_t item_le[4] = { 0xFE, 0xFF, 0x00, 0xE0 };
	uint64_t value = *pos + e->hlen, end = value + e->len;
	int rc;

	if (e->vr == VR('S', 'Q'))
		return enter(w, FRAME_SEQUENCE, f->enc, e, pos, end, true);
	if (may_hide_sequence(e)) {
		if ((rc = need(w, value + 4)) != 0)
			return rc;
		if (memcmp(w->data + value, item_le, 4) == 0)
			return enter(w, FRAME_SEQUENCE, ENC_IMPLICIT, e, pos, end, true);
	}
	*pos = end; /* a value the walk skips need not be in memory */
	return 0;
}

/*
 * An item holds whole elements, whose lengths are even (PS3.5 §7.1.1).
 * GDCM asserts that too: Item::Write on a defined-length item, and
 * Item::GetLength when it sizes items, as it does while reading implicit
 * VR without a (0002,0000) group length; so an odd item is refused.
 */
static int odd_item(const struct walk *w, uint64_t start, uint64_t len)
{
	return fail_at(w, ITEM, start, "odd length %" PRIu64 " (an item holds elements of "
		"even length, and GDCM asserts on odd items)", len);
}

static int dataset_delimiter(struct walk *w, const struct frame *f, uint64_t *pos, const struct elem *e)
{
	if (e->tag == ITEM_END && !f->defined) { /* only items are undefined-length datasets */
		if ((*pos - f->start) % 2)
			return odd_item(w, f->start, *pos - f->start - HEADER);
		return close_undefined(w, pos, e);
	}
	if (e->tag == ITEM)
		return fail_at(w, e->tag, *pos, "outside a sequence");
	if (e->tag == ITEM_END)
		return fail_at(w, e->tag, *pos, "outside an undefined-length item");
	if (e->tag == SEQ_END)
		return fail_at(w, e->tag, *pos, w->top ? "inside an item that was not closed"
			: "outside a sequence");
	return fail_at(w, e->tag, *pos, "unknown item or delimiter tag");
}

/* Charges an item opening in sequence @p f (see SLOW_FACTOR). */
static int charge_item(struct walk *w, const struct frame *f, uint64_t pos)
{
	uint32_t cost = 1;
	unsigned i;

	for (i = 0; i < f->undefined_sequences && cost <= SLOW_BUDGET; i++)
		cost *= SLOW_FACTOR;
	if (cost <= SLOW_BUDGET - w->slow_cost) {
		w->slow_cost += cost;
		return 0;
	}
	return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
		"%s: item (FFFE,E000) at byte offset %" PRIu64 ": undefined-length sequences "
		"nested %u deep, in an implicit VR dataset without a (0002,0000) group length, "
		"which GDCM takes exponential time to parse", w->name, pos,
		(unsigned)f->undefined_sequences);
}

/* --- one step in each kind of container ----------------------------------------- */

static int dataset_step(struct walk *w, const struct frame *f, uint64_t *pos)
{
	struct elem e = { 0, 0, 0, 0 };
	int rc;

	if ((rc = read_tag(w, f, *pos, &e)) != 0)
		return rc;
	if (GROUP(e.tag) == 0xFFFE)
		return dataset_delimiter(w, f, pos, &e);
	/* PS3.5 7.1: ascending tag order.  GDCM re-reads descending input
	 * with its fallback readers, which assert on what they then meet
	 * (a mutated File Meta tag led it to abort on (FFFE,E0DD)). */
	if (e.tag < w->last_tag[w->top])
		return fail_at(w, e.tag, *pos, "out of order after (%04X,%04X)",
			GROUP(w->last_tag[w->top]), (unsigned)(w->last_tag[w->top] & 0xFFFF));
	w->last_tag[w->top] = e.tag;
	if (e.tag == PIXEL_DATA && w->top == 0 && w->out->pixel_data_offset == SIZE_MAX) {
		w->out->pixel_data_offset = (size_t)*pos;
		if (w->flags & FDN_GUARD_STOP_AT_PIXELS)
			return STOPPED;
	}
	if ((rc = read_vr(w, f, *pos, &e)) != 0)
		return rc;
	if (e.len == UNDEFINED_LENGTH)
		return open_undefined(w, f, pos, &e);
	if (e.len > f->end - *pos - e.hlen)
		return overrun(w, f, *pos, &e);
	return open_defined(w, f, pos, &e);
}

static int sequence_step(struct walk *w, const struct frame *f, uint64_t *pos)
{
	struct elem e = { 0, 0, 0, 0 };
	int rc;

	if ((rc = read_tag(w, f, *pos, &e)) != 0)
		return rc;
	if (e.tag == ITEM) {
		if (w->slow && (rc = charge_item(w, f, *pos)) != 0)
			return rc;
		if (e.len == UNDEFINED_LENGTH)
			return enter(w, FRAME_DATASET, f->enc, &e, pos, f->end, false);
		if (e.len > f->end - *pos - HEADER)
			return overrun(w, f, *pos, &e);
		if (e.len % 2)
			return odd_item(w, *pos, e.len);
		return enter(w, FRAME_DATASET, f->enc, &e, pos, *pos + HEADER + e.len, true);
	}
	if (e.tag == SEQ_END && !f->defined)
		return close_undefined(w, pos, &e);
	if (e.tag == SEQ_END)
		return fail_at(w, e.tag, *pos, "inside the defined-length sequence (%04X,%04X) "
			"at byte offset %" PRIu64, GROUP(f->tag), ELEMENT(f->tag), f->start);
	if (e.tag == ITEM_END)
		return fail_at(w, e.tag, *pos, "outside an undefined-length item");
	return fail_at(w, e.tag, *pos, "inside the sequence (%04X,%04X) at byte offset %" PRIu64
		" but outside any item", GROUP(f->tag), ELEMENT(f->tag), f->start);
}

/* Encapsulated Pixel Data: defined-length items (the basic offset table,
 * then fragments) whose bytes are skipped, then a sequence delimiter. */
static int fragments_step(struct walk *w, const struct frame *f, uint64_t *pos)
{
	struct elem e = { 0, 0, 0, 0 };
	int rc;

	if ((rc = read_tag(w, f, *pos, &e)) != 0)
		return rc;
	if (e.tag == ITEM) {
		if (e.len == UNDEFINED_LENGTH)
			return fail_at(w, e.tag, *pos, "undefined length in encapsulated Pixel Data");
		if (e.len > f->end - *pos - HEADER)
			return overrun(w, f, *pos, &e);
		*pos += HEADER + (uint64_t)e.len;
		return 0;
	}
	if (e.tag == SEQ_END)
		return close_undefined(w, pos, &e);
	return fail_at(w, e.tag, *pos, "inside encapsulated Pixel Data at byte offset %" PRIu64
		", where only items and a sequence delimiter belong", f->start);
}

/* Walks from @p pos to the end of the outermost frame (set up by the caller). */
static int walk(struct walk *w, uint64_t pos)
{
	for (;;) {
		const struct frame *f = &w->stack[w->top];
		int rc;

		if (pos == f->end) {
			if (w->top == 0)
				break;
			if (!f->defined)
				return unclosed(w, f);
			leave(w);
			continue;
		}
		if (f->kind == FRAME_DATASET)
			rc = dataset_step(w, f, &pos);
		else if (f->kind == FRAME_SEQUENCE)
			rc = sequence_step(w, f, &pos);
		else
			rc = fragments_step(w, f, &pos);
		if (rc == STOPPED)
			break;
		if (rc)
			return rc;
	}
	w->out->end = (size_t)pos;
	return 0;
}

static int walk_dataset(struct walk *w, uint64_t pos, int enc)
{
	struct frame *f = &w->stack[0];

	w->top = 0;
	w->depth = 0;
	f->start = pos;
	f->end = w->total;
	f->tag = 0;
	f->kind = FRAME_DATASET;
	f->enc = (uint8_t)enc;
	f->defined = true;
	f->undefined_sequences = 0;
	w->last_tag[0] = 0;
	return walk(w, pos);
}

/* --- File Meta group (PS3.10 §7.1) ---------------------------------------------- */

/* Copies a UID without its trailing NUL or space padding. */
static int copy_uid(const struct walk *w, char *dst, const uint8_t *v, uint32_t len,
	uint32_t tag, uint64_t pos)
{
	uint32_t i;

	while (len > 0 && (v[len - 1] == '\0' || v[len - 1] == ' '))
		len--;
	if (len > UID_MAX)
		return fail_at(w, tag, pos, "a UID of %" PRIu32 " characters (at most %d)", len, UID_MAX);
	for (i = 0; i < len; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7F)
			return fail_at(w, tag, pos, "byte 0x%02X in a UID", v[i]);
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

static int meta_value(struct walk *w, uint64_t pos, const struct elem *e)
{
	char *dst;
	int rc;

	if (e->tag == TRANSFER_SYNTAX)
		dst = w->out->transfer_syntax;
	else if (e->tag == MEDIA_STORAGE_SOP_CLASS)
		dst = w->out->media_storage_sop_class;
	else
		return 0;
	if ((rc = need(w, pos + e->hlen + e->len)) != 0)
		return rc;
	return copy_uid(w, dst, w->data + pos + e->hlen, e->len, e->tag, pos);
}

/*
 * Walks the group-0002 elements from *pos and leaves *pos on the first
 * byte after them.  (0002,0000) group length is not trusted: GDCM reads
 * the meta by walking its elements and was seen to read files whose group
 * length was off in either direction, so the element walk is the truth.
 */
static int walk_meta(struct walk *w, uint64_t *pos, int enc)
{
	struct frame meta = { .start = *pos, .end = w->total, .enc = (uint8_t)enc, .defined = true };
	uint64_t p = *pos;
	struct elem e = { 0, 0, 0, 0 };
	int rc;

	w->out->has_meta = true;
	for (;;) {
		/* GDCM aborts on a File Meta group with nothing after it. */
		if (p == w->total)
			return fail(w, p, "no dataset after the File Meta group");
		if ((rc = read_tag(w, &meta, p, &e)) != 0)
			return rc;
		if (GROUP(e.tag) != 0x0002)
			break;
		if ((rc = read_vr(w, &meta, p, &e)) != 0)
			return rc;
		if (ELEMENT(e.tag) == 0x0000)
			w->group_length = true;
		if (e.len == UNDEFINED_LENGTH || e.vr == VR('S', 'Q'))
			return fail_at(w, e.tag, p, "a sequence in the File Meta group");
		if (e.len > w->total - p - e.hlen)
			return overrun(w, &meta, p, &e);
		if ((rc = meta_value(w, p, &e)) != 0)
			return rc;
		p += e.hlen + (uint64_t)e.len;
	}
	*pos = p;
	return 0;
}

static int meta_encoding(struct walk *w, int *enc)
{
	fdn_guard_result *out = w->out;

	out->is_dicomdir = strcmp(out->media_storage_sop_class, DICOMDIR_SOP_CLASS) == 0;
	if (!out->transfer_syntax[0])
		return fail(w, out->meta_start,
			"File Meta group without a Transfer Syntax UID (0002,0010)");
	*enc = transfer_syntax_encoding(out->transfer_syntax);
	if (*enc < 0)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"%s: unknown transfer syntax %s", w->name, out->transfer_syntax);
	return 0;
}

/* --- layout ------------------------------------------------------------------- */

/* Skips the preamble when the DICM magic is there. */
static int find_start(struct walk *w, uint64_t *pos)
{
	int rc;

	*pos = 0;
	if (w->total < MAGIC_END)
		return 0;
	if ((rc = need(w, MAGIC_END)) != 0)
		return rc;
	if (memcmp(w->data + MAGIC_OFFSET, "DICM", 4) == 0) {
		w->out->has_preamble = true;
		*pos = MAGIC_END;
	}
	return 0;
}

/*
 * Tells from the first element what follows: a File Meta group, or a bare
 * dataset and its encoding.  Without the DICM magic only group 0002 or
 * 0008 (where every composite dataset starts) counts as DICOM; explicit VR
 * big endian is taken only when the group reads 0008 big endian and a VR
 * follows, which little endian input cannot produce (group 0800).
 */
static int classify(struct walk *w, uint64_t pos, int *enc, bool *meta)
{
	const uint8_t *p;
	bool explicit_vr;
	int rc;

	*meta = false;
	if (w->total - pos < HEADER) {
		if (!w->out->has_preamble)
			return not_dicom(w);
		return fail(w, pos, "truncated: no element after the DICM magic");
	}
	if ((rc = need(w, pos + HEADER)) != 0)
		return rc;
	p = w->data + pos;
	explicit_vr = vr_form(p + 4) != VR_NONE;
	*enc = explicit_vr ? ENC_LE : ENC_IMPLICIT;
	if (get16(p, false) == 0x0002) {
		*meta = true; /* implicit VR meta is non-standard, but GDCM reads it */
		return 0;
	}
	if (get16(p, false) == 0x0008)
		return 0;
	if (get16(p, true) == 0x0008 && explicit_vr) {
		*enc = ENC_BE;
		return 0;
	}
	if (w->out->has_preamble)
		return 0; /* the magic says DICOM: let the walk judge the elements */
	if (get16(p, true) == 0x0008)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"%s: implicit VR big endian dataset (ACR-NEMA) at byte offset 0 is not supported",
			w->name);
	return not_dicom(w);
}

/* GDCM reads a dataset written in implicit VR under an explicit-VR transfer
 * syntax (pydicom's SC_rgb_jpeg.dcm is one); so does the walk, when the
 * first element has no VR. */
static int mislabelled_implicit(struct walk *w, uint64_t pos, int *enc)
{
	int rc;

	if (*enc == ENC_IMPLICIT || w->total - pos < HEADER)
		return 0;
	if ((rc = need(w, pos + HEADER)) != 0)
		return rc;
	if (vr_form(w->data + pos + 4) == VR_NONE)
		*enc = ENC_IMPLICIT;
	return 0;
}

/* --- deflate ------------------------------------------------------------------ */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return fdn__calloc(items, size);
}

static void z_free(voidpf opaque, voidpf ptr)
{
	(void)opaque;
	fdn__free(ptr);
}

/* Room for one byte past the cap tells "exactly the cap" from "more". */
static size_t inflate_limit(uint64_t cap)
{
	return cap >= SIZE_MAX ? SIZE_MAX : (size_t)cap + 1;
}

static int inflate_grow(uint8_t **buf, size_t *alloc, size_t limit)
{
	size_t n = *alloc > limit / 2 ? limit : *alloc * 2;
	uint8_t *p = fdn__realloc(*buf, n);

	if (!p)
		return fdn__error_oom();
	*buf = p;
	*alloc = n;
	return 0;
}

static int inflate_error(int zrc, const z_stream *zs, uint64_t offset, const char *name)
{
	if (zrc == Z_MEM_ERROR)
		return fdn__error_oom();
	if (zrc == Z_BUF_ERROR)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"%s: truncated deflate stream: the input ends at byte offset %" PRIu64
			" before its last block", name, offset);
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
		"%s: corrupt deflate stream (%s) at byte offset %" PRIu64, name,
		zs->msg ? zs->msg : "bad data", offset);
}

struct inflated {
	uint8_t *buf;
	size_t alloc;
	size_t have;
	size_t limit;     /* the most bytes buf may grow to */
};

/* Runs inflate() until the stream ends; 1 when it would pass the limit. */
static int inflate_all(z_stream *zs, struct inflated *o, const uint8_t *in, size_t in_size,
	uint64_t in_offset, const char *name)
{
	size_t fed = 0;
	int zrc;

	for (;;) {
		if (o->have == o->alloc) {
			if (o->alloc == o->limit)
				return 1;
			if ((zrc = inflate_grow(&o->buf, &o->alloc, o->limit)) != 0)
				return zrc;
		}
		if (zs->avail_in == 0 && fed < in_size) {
			zs->next_in = in + fed;
			zs->avail_in = (uInt)(in_size - fed < UINT_MAX ? in_size - fed : UINT_MAX);
			fed += zs->avail_in;
		}
		zs->next_out = o->buf + o->have;
		zs->avail_out = (uInt)(o->alloc - o->have < UINT_MAX ? o->alloc - o->have : UINT_MAX);
		zrc = inflate(zs, Z_NO_FLUSH);
		o->have = (size_t)(zs->next_out - o->buf);
		if (zrc == Z_STREAM_END)
			return 0; /* bytes after the stream are not parsed by anyone: ignored */
		if (zrc != Z_OK && !(zrc == Z_BUF_ERROR && zs->avail_out == 0))
			return inflate_error(zrc, zs, in_offset + (fed - zs->avail_in), name);
	}
}

int fdn_dicom__guard_inflate(uint8_t **out, size_t *out_size, const uint8_t *in,
	size_t in_size, uint64_t in_offset, uint64_t cap, const char *name)
{
	struct inflated o = { NULL, 0, 0, inflate_limit(cap) };
	z_stream zs;
	int rc;

	*out = NULL;
	*out_size = 0;
	/* start at four times the input, grow by doubling up to the limit */
	o.alloc = in_size < o.limit / 4 ? in_size * 4 : o.limit;
	if (o.alloc < 4096)
		o.alloc = o.limit < 4096 ? o.limit : 4096;
	if (!(o.buf = fdn__malloc(o.alloc)))
		return fdn__error_oom();
	memset(&zs, 0, sizeof(zs));
	zs.zalloc = z_alloc;
	zs.zfree = z_free;
	if (inflateInit2(&zs, -15) != Z_OK) {
		fdn__free(o.buf);
		return fdn__error_oom();
	}
	rc = inflate_all(&zs, &o, in, in_size, in_offset, name);
	inflateEnd(&zs);
	if (rc == 1 || (rc == 0 && o.have > cap))
		rc = fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"%s: the deflated dataset at byte offset %" PRIu64 " inflates to more than %"
			PRIu64 " bytes", name, in_offset, cap);
	if (rc) {
		fdn__free(o.buf);
		return rc;
	}
	*out = o.buf;
	*out_size = o.have;
	return 0;
}

/*
 * The deflated transfer syntax: inflate the rest of the input and walk it
 * as explicit VR little endian.  Offsets in the inflated bytes mean nothing
 * in the file, so pixel_data_offset stays SIZE_MAX and end is the input
 * size; and since GDCM has to inflate and parse it all, all of it is
 * walked, FDN_GUARD_STOP_AT_PIXELS or not.
 */
static int walk_deflated(struct walk *w, uint64_t pos)
{
	uint64_t total = w->total;
	uint8_t *buf;
	size_t n;
	int rc;

	w->out->encoding = ENC_DEFLATED;
	if (w->size < total) {
		w->out->needed = total;
		return fdn__error_set(FDN_EBUFS, FDN_ERRCLASS_DICOM,
			"%s: a deflated dataset needs the whole input (%" PRIu64 " bytes)",
			w->name, total);
	}
	rc = fdn_dicom__guard_inflate(&buf, &n, w->data + pos, (size_t)(total - pos), pos,
		FDN_GUARD_MAX_INFLATED, w->name);
	if (rc)
		return rc;
	w->data = buf;
	w->size = n;
	w->total = n;
	w->where = " in the inflated dataset";
	w->flags &= ~FDN_GUARD_STOP_AT_PIXELS;
	if (n == 0)
		rc = fail(w, 0, "no dataset after the File Meta group");
	else
		rc = walk_dataset(w, 0, ENC_LE);
	fdn__free(buf);
	w->out->pixel_data_offset = SIZE_MAX;
	w->out->end = rc ? 0 : (size_t)total;
	return rc;
}

/* --- entry point -------------------------------------------------------------- */

static void result_init(fdn_guard_result *out)
{
	memset(out, 0, sizeof(*out));
	out->pixel_data_offset = SIZE_MAX;
}

int fdn_dicom__guard(fdn_guard_result *out, const uint8_t *data, size_t size,
	uint64_t total_size, unsigned int flags, const char *name)
{
	struct walk w;
	uint64_t pos;
	bool meta = false;
	int enc = ENC_IMPLICIT, rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(data || size == 0, "data");
	FDN__CHECK_ARG(size <= total_size, "size");
	result_init(out);
	w.data = data;
	w.size = size;
	w.total = total_size;
	w.name = name ? name : "buffer";
	w.where = "";
	w.flags = flags;
	w.out = out;
	w.top = 0;
	w.depth = 0;
	w.slow = false;
	w.group_length = false;
	w.slow_cost = 0;
#if SIZE_MAX < UINT64_MAX
	if (total_size > SIZE_MAX)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"%s: input larger than the address space", w.name);
#endif
	if ((rc = find_start(&w, &pos)) != 0 || (rc = classify(&w, pos, &enc, &meta)) != 0)
		return rc;
	out->meta_start = (size_t)pos;
	if (meta) {
		if ((rc = walk_meta(&w, &pos, enc)) != 0 || (rc = meta_encoding(&w, &enc)) != 0)
			return rc;
	}
	out->dataset_start = (size_t)pos;
	if (enc == ENC_DEFLATED)
		return walk_deflated(&w, pos);
	if (meta && (rc = mislabelled_implicit(&w, pos, &enc)) != 0)
		return rc;
	out->encoding = enc;
	w.slow = enc == ENC_IMPLICIT && (!w.group_length ||
		strcmp(out->transfer_syntax, "1.2.840.10008.1.2") != 0);
	return walk_dataset(&w, pos, enc);
}
