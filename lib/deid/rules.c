/*
 * Site rules: JSON text to a sorted array of (tag, action).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rules_private.h"

static const char *const action_names[] = {
	"keep", "remove", "empty", "dummy", "clean", "pseudonymize",
};

static int rule_error(size_t index, const char *field, const char *why)
{
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
		"de-identification rules: rule %zu, \"%s\": %s", index, field, why);
}

static bool parse_hex_tag(uint32_t *out, const char *s)
{
	char digits[9];
	size_t n = 0;

	if (s[0] == '(') {
		/* "(GGGG,EEEE)" */
		if (strlen(s) != 11 || s[5] != ',' || s[10] != ')')
			return false;
		memcpy(digits, s + 1, 4);
		memcpy(digits + 4, s + 6, 4);
	} else {
		if (strlen(s) != 8)
			return false;
		memcpy(digits, s, 8);
	}
	digits[8] = '\0';
	for (n = 0; n < 8; n++)
		if (!isxdigit((unsigned char)digits[n]))
			return false;
	*out = (uint32_t)strtoul(digits, NULL, 16);
	return true;
}

static int parse_tag(uint32_t *out, const json_t *v, size_t index)
{
	const char *s = json_string_value(v);

	if (!s)
		return rule_error(index, "tag", "must be a string");
	if (!parse_hex_tag(out, s) && fdn_tag_from_keyword(out, s) != 0)
		return rule_error(index, "tag",
			"is neither \"(GGGG,EEEE)\", \"GGGGEEEE\" nor a PS3.6 keyword");
	if ((*out >> 16) & 1u)
		return rule_error(index, "tag",
			"private attributes are governed by the Retain Safe Private option, not site rules");
	if ((*out >> 16) == 0x0002 || (*out >> 16) == 0x0000 || (*out & 0xFFFFu) == 0)
		return rule_error(index, "tag",
			"File Meta, command and group length elements cannot have rules");
	return 0;
}

static int parse_action(int *out, const json_t *v, size_t index)
{
	const char *s = json_string_value(v);

	if (!s)
		return rule_error(index, "action", "must be a string");
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
		if (strcmp(s, action_names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return rule_error(index, "action",
		"must be keep, remove, empty, dummy, clean or pseudonymize");
}

static int parse_rule(fdn_deid_site_rule *r, const json_t *obj, size_t index)
{
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(obj))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification rules: rule %zu is not an object", index);
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "tag") != 0 && strcmp(key, "action") != 0 &&
		    strcmp(key, "comment") != 0)
			return rule_error(index, key, "unknown member (allowed: tag, action, comment)");
	}
	if (!json_object_get(obj, "tag"))
		return rule_error(index, "tag", "is missing");
	if (!json_object_get(obj, "action"))
		return rule_error(index, "action", "is missing");
	if ((rc = parse_tag(&r->tag, json_object_get(obj, "tag"), index)) != 0)
		return rc;
	return parse_action(&r->action, json_object_get(obj, "action"), index);
}

static int cmp_rule(const void *a, const void *b)
{
	uint32_t x = ((const fdn_deid_site_rule *)a)->tag;
	uint32_t y = ((const fdn_deid_site_rule *)b)->tag;

	return x < y ? -1 : x > y;
}

static int parse_rules(fdn_deid_site_rule *rules, const json_t *arr)
{
	size_t n = json_array_size(arr);

	for (size_t i = 0; i < n; i++) {
		int rc = parse_rule(&rules[i], json_array_get(arr, i), i);
		if (rc != 0)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (rules[j].tag == rules[i].tag)
				return rule_error(i, "tag", "repeats the tag of an earlier rule");
	}
	qsort(rules, n, sizeof(*rules), cmp_rule);
	return 0;
}

static int check_root(const json_t *root)
{
	const char *key;
	json_t *v;

	if (!json_is_object(root))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification rules: the text must be a JSON object");
	json_object_foreach((json_t *)root, key, v) {
		if (strcmp(key, "rules") != 0 && strcmp(key, "comment") != 0)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
				"de-identification rules: unknown member \"%s\" (allowed: rules, comment)",
				key);
	}
	if (!json_is_array(json_object_get(root, "rules")))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification rules: \"rules\" must be an array");
	return 0;
}

int fdn_deid__rules_parse(fdn_deid_site_rule **out, size_t *count, const char *json)
{
	json_error_t err;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
	fdn_deid_site_rule *rules = NULL;
	size_t n;
	int rc;

	*out = NULL;
	*count = 0;
	if (!root)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"de-identification rules: invalid JSON at line %d column %d: %s",
			err.line, err.column, err.text);
	rc = check_root(root);
	n = rc == 0 ? json_array_size(json_object_get(root, "rules")) : 0;
	if (rc == 0 && n > 0) {
		rules = fdn__calloc(n, sizeof(*rules));
		rc = rules ? parse_rules(rules, json_object_get(root, "rules")) : fdn__error_oom();
	}
	json_decref(root);
	if (rc != 0) {
		fdn__free(rules);
		return rc;
	}
	*out = rules;
	*count = n;
	return 0;
}
