/*
 * fednode dump [--json] [--header-only] FILE
 *
 * Every element of a DICOM file, nested sequences included, one per line
 * in the spirit of dcmdump; or the dataset in the DICOM JSON Model.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fednode/fednode.h>

#include "cli.h"

/* Characters of a value shown before it is cut. */
#define SHOW_TEXT_MAX 64
/* Bytes of a binary value shown in hex. */
#define SHOW_BYTES_MAX 16
/* Column where the keyword ends, for aligned values at the top level. */
#define KEYWORD_WIDTH 36

struct dump {
	const fdn_dataset *ds;
	fdn_buf value;       /* scratch for each value */
	unsigned int failed; /* values that could not be read */
};

static int dump_level(struct dump *d, const char *item_path);

static const char *const binary_vrs[] = {
	"OB", "OD", "OF", "OL", "OV", "OW", "UN"
};

static int is_binary_vr(const char *vr)
{
	size_t i;

	for (i = 0; i < sizeof(binary_vrs) / sizeof(binary_vrs[0]); i++)
		if (!strcmp(vr, binary_vrs[i]))
			return 1;
	return 0;
}

static const char *transfer_syntax_name(const char *uid)
{
	static const char *const names[][2] = {
		{ "1.2.840.10008.1.2", "Implicit VR Little Endian" },
		{ "1.2.840.10008.1.2.1", "Explicit VR Little Endian" },
		{ "1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian" },
		{ "1.2.840.10008.1.2.2", "Explicit VR Big Endian" },
		{ "1.2.840.10008.1.2.4.50", "JPEG Baseline" },
		{ "1.2.840.10008.1.2.4.70", "JPEG Lossless SV1" },
		{ "1.2.840.10008.1.2.4.80", "JPEG-LS Lossless" },
		{ "1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless" },
		{ "1.2.840.10008.1.2.4.91", "JPEG 2000" },
		{ "1.2.840.10008.1.2.5", "RLE Lossless" },
	};
	size_t i;

	for (i = 0; uid && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(uid, names[i][0]))
			return names[i][1];
	return NULL;
}

/* Text on one line: control characters escaped, cut after SHOW_TEXT_MAX
 * characters (never inside a UTF-8 sequence). */
static void print_text(const char *s, size_t n)
{
	size_t i, chars = 0;

	putchar('[');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c & 0xC0) != 0x80 && chars++ == SHOW_TEXT_MAX) {
			fputs("...", stdout);
			break;
		}
		if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c == 0x7F)
			printf("\\x%02X", c);
		else
			putchar(c);
	}
	putchar(']');
}

static void print_bytes(const unsigned char *p, size_t n, int encapsulated)
{
	size_t i;

	if (encapsulated)
		fputs("encapsulated: ", stdout);
	for (i = 0; i < n && i < SHOW_BYTES_MAX; i++)
		printf("%s%02x", i ? " " : "", p[i]);
	printf("%s (%zu bytes)", n > SHOW_BYTES_MAX ? " ..." : "", n);
}

/* An element's value could not be read: say so in place and go on, so
 * that one bad value does not hide the rest of the file. */
static void print_failure(struct dump *d)
{
	printf("<error: %s>", fdn_error_last()->message);
	d->failed++;
}

static void print_value(struct dump *d, const fdn_element_info *e, const char *path)
{
	if (!strcmp(e->vr, "SQ")) {
		printf("(%zu item%s)", e->vm, e->vm == 1 ? "" : "s");
	} else if (is_binary_vr(e->vr)) {
		if (fdn_dataset_get_bytes(&d->value, d->ds, path) != 0)
			print_failure(d);
		else if (d->value.size == 0)
			fputs("(no value)", stdout);
		else
			print_bytes((const unsigned char *)d->value.ptr, d->value.size,
				e->length == 0xFFFFFFFFu);
	} else if (fdn_dataset_get_string(&d->value, d->ds, path) != 0) {
		print_failure(d);
	} else if (d->value.size == 0) {
		fputs("(no value)", stdout);
	} else {
		print_text(d->value.ptr, d->value.size);
	}
}

static const char *element_name(const fdn_element_info *e)
{
	uint16_t group = (uint16_t)(e->tag >> 16), element = (uint16_t)e->tag;

	if (e->keyword)
		return e->keyword;
	if (element == 0x0000)
		return "GroupLength";
	if (group & 1)
		return element >= 0x0010 && element <= 0x00FF ? "PrivateCreator" : "(private)";
	return "(unknown)";
}

static void print_length(const fdn_element_info *e)
{
	if (e->length == 0xFFFFFFFFu)
		printf("  # VM %zu, undefined length\n", e->vm);
	else
		printf("  # VM %zu, %lu bytes\n", e->vm, (unsigned long)e->length);
}

static int print_items(struct dump *d, const fdn_element_info *e, const char *path)
{
	int indent = 2 * ((int)e->depth + 1), rc = 0;
	size_t i, n = strlen(path) + 32;
	char *item = malloc(n);

	if (!item) {
		fprintf(stderr, "fednode dump: out of memory\n");
		return FDN_EUSER;
	}
	for (i = 0; rc == 0 && i < e->vm; i++) {
		printf("%*sitem [%zu]\n", indent, "", i);
		snprintf(item, n, "%s[%zu]", path, i);
		rc = dump_level(d, item);
	}
	free(item);
	return rc;
}

static int print_element(const fdn_element_info *e, void *payload)
{
	struct dump *d = payload;
	int indent = 2 * (int)e->depth, width = KEYWORD_WIDTH - indent, rc = 0;
	/* The path is lent only until the next call on the dataset. */
	char *path = strdup(e->path);

	if (!path) {
		fprintf(stderr, "fednode dump: out of memory\n");
		return FDN_EUSER;
	}
	printf("%*s(%04X,%04X) %s %-*s ", indent, "", (unsigned)(e->tag >> 16),
		(unsigned)(e->tag & 0xFFFF), e->vr, width > 1 ? width : 1, element_name(e));
	print_value(d, e, path);
	print_length(e);
	if (!strcmp(e->vr, "SQ"))
		rc = print_items(d, e, path);
	free(path);
	return rc;
}

/* One level: the dataset (NULL) or a sequence item, recursing into
 * sequences so that each item gets a heading of its own. */
static int dump_level(struct dump *d, const char *item_path)
{
	return fdn_dataset_foreach(d->ds, item_path, 0, print_element, d);
}

static int dump_text(const fdn_dataset *ds, const char *file)
{
	struct dump d = { ds, FDN_BUF_INIT, 0 };
	const char *ts = fdn_dataset_transfer_syntax(ds), *name = transfer_syntax_name(ts);
	int rc;

	printf("# File: %s\n", file);
	printf("# Transfer Syntax: %s%s%s%s\n", ts ? ts : "(unknown)",
		name ? " (" : "", name ? name : "", name ? ")" : "");
	if (fdn_dataset_is_header_only(ds))
		printf("# Header only: Pixel Data (7FE0,0010) not read\n");
	rc = dump_level(&d, NULL);
	fdn_buf_dispose(&d.value);
	if (rc == FDN_EUSER)
		return CLI_FAILED;
	if (rc != 0)
		return cli_fail("dump", rc);
	if (d.failed) {
		fprintf(stderr, "fednode dump: %s: %u value%s could not be read"
			" (shown as <error>)\n", file, d.failed, d.failed == 1 ? "" : "s");
		return CLI_FAILED;
	}
	return CLI_OK;
}

static int dump_json(const fdn_dataset *ds)
{
	fdn_buf json = FDN_BUF_INIT;
	int rc = fdn_dataset_to_json(&json, ds, FDN_JSON_PRETTY);

	if (rc != 0)
		return cli_fail("dump --json", rc);
	fwrite(json.ptr, 1, json.size, stdout);
	putchar('\n');
	fdn_buf_dispose(&json);
	return CLI_OK;
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "fednode dump: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "");
	fputs("usage: fednode dump [--json] [--header-only] FILE (see fednode dump --help)\n",
		stderr);
	return CLI_USAGE;
}

int cmd_dump(int argc, char **argv)
{
	const char *file = NULL;
	int json = 0, options = 1, i, rc;
	unsigned int flags = FDN_READ_FULL;
	fdn_dataset *ds = NULL;

	for (i = 1; i < argc; i++) {
		if (options && !strcmp(argv[i], "--")) {
			options = 0;
		} else if (options && !strcmp(argv[i], "--json")) {
			json = 1;
		} else if (options && !strcmp(argv[i], "--header-only")) {
			flags = FDN_READ_HEADER_ONLY;
		} else if (options && argv[i][0] == '-' && argv[i][1]) {
			return usage_error("unknown option", argv[i]);
		} else if (file) {
			return usage_error("unexpected argument", argv[i]);
		} else {
			file = argv[i];
		}
	}
	if (!file)
		return usage_error("no FILE given", NULL);
	if ((rc = fdn_dataset_read_file(&ds, file, flags)) != 0)
		return cli_fail("dump", rc);
	rc = json ? dump_json(ds) : dump_text(ds, file);
	fdn_dataset_free(ds);
	return rc;
}
