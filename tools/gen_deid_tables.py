#!/usr/bin/python3
# Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
"""Generate lib/deid/tables.c from the PS3.15 data in data/ps3.15-2026c/.

The de-identifier's tables (DICOM PS3.15 Table E.1-1, Table E.3.10-1 and
the per-IOD Types that resolve composite actions) are checked in as C, so
the build needs no Python.  After changing the data, regenerate with

    /usr/bin/python3 tools/gen_deid_tables.py

from the source root, and commit data and lib/deid/tables.c together.  The
unit test 'deid-tables-fresh' fails while tables.c and the data disagree.

Only the standard library is used.  Before writing anything the script
checks its input against the counts data/ps3.15-2026c/README.md states and
stops with a message on any difference: new editions of the standard must
be looked at, not swallowed.  The output depends only on the input files
(every list is sorted), so two runs give identical bytes.

Options:
    --data DIR        input folder (default: data/ps3.15-2026c next to tools/)
    --output FILE     output (default: lib/deid/tables.c); '-' for stdout
    --conflicts       print the rows where option columns disagree, then exit
"""

import argparse
import collections
import hashlib
import itertools
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_REL = "data/ps3.15-2026c"
OUTPUT_REL = "lib/deid/tables.c"
E1_FILE = "ps3.15-table-e1-1.json"
SAFE_FILE = "ps3.15-table-e3.10-1-safe-private.json"
IOD_FILE = "iod-attribute-types.json"

E1_EDITION = "2026c"
TYPES_EDITION = "2025e"

# The order of fdn_deid_option in lib/deid/tables.h.
OPTIONS = [
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_long_full_dates",
    "retain_long_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
]

# Table E.1-1 code -> the short macro tables.c defines for fdn_deid_action.
ACTIONS = {
    None: "A__",
    "D": "A_D",
    "Z": "A_Z",
    "X": "A_X",
    "K": "A_K",
    "C": "A_C",
    "U": "A_U",
    "Z/D": "A_ZD",
    "X/Z": "A_XZ",
    "X/D": "A_XD",
    "X/Z/D": "A_XZD",
    "X/Z/U*": "A_XZU",
}
COMPOSITE = {"Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}

# What data/ps3.15-2026c/README.md states about the input.
EXPECT_ROWS = 656
EXPECT_MATCH = {"exact": 652, "repeating_group": 3, "private_odd_group": 1}
EXPECT_RETIRED = 102
EXPECT_COLUMNS = {
    "basic_profile": {"X": 416, "D": 93, "U": 55, "Z": 42, "X/D": 23,
                      "X/Z": 11, "X/Z/D": 8, "Z/D": 6, "X/Z/U*": 2},
    "retain_safe_private": {"C": 1},
    "retain_uids": {"K": 60},
    "retain_device_identity": {"K": 48, "C": 11},
    "retain_institution_identity": {"K": 10},
    "retain_patient_characteristics": {"K": 14, "C": 5},
    "retain_long_full_dates": {"K": 169},
    "retain_long_modified_dates": {"C": 169},
    "clean_descriptors": {"C": 140},
    "clean_structured_content": {"C": 4},
    "clean_graphics": {"C": 4},
}
EXPECT_FULL_VS_MODIFIED = 169
EXPECT_REPEATING = {
    "(50xx,xxxx)": ("50000000", "FF000000"),
    "(60xx,3000)": ("60003000", "FF00FFFF"),
    "(60xx,4000)": ("60004000", "FF00FFFF"),
}
EXPECT_NOTES = {"Icon Image Sequence": 11}
EXPECT_SAFE_ROWS = 479
EXPECT_SAFE_CREATORS = 20
EXPECT_COMPOSITE = 50
EXPECT_SOP_CLASSES = 180
EXPECT_OCCURRENCES = {"occurrences": 9816, "top_level": 3700, "nested": 6116,
                      "fg": 224, "attributes": 50, "sop_classes": 180}
EXPECT_CODE_TYPE_CONFLICTS = 15

TYPE_RANK = {"1": 1, "1C": 1, "2": 2, "2C": 2, "3": 3}
FALLBACK = {"Z": "A_Z", "D": "A_D", "U*": "A_U"}


def fail(msg):
    sys.exit("gen_deid_tables.py: input check failed: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def load(data_dir, name):
    path = os.path.join(data_dir, name)
    with open(path, "rb") as f:
        raw = f.read()
    return json.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()


def hex_tag(s, what):
    check(isinstance(s, str) and len(s) == 8
          and all(c in "0123456789ABCDEF" for c in s),
          f"{what}: '{s}' is not 8 upper-case hex digits")
    return int(s, 16)


def paren_tag(t):
    return "(%04X,%04X)" % (t >> 16, t & 0xFFFF)


def c_str(s):
    """A C string literal, or NULL.  Non-ASCII goes out as octal escapes,
    which cannot run into a following digit the way \\x escapes do."""
    if s is None:
        return "NULL"
    out = []
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F and not (ch == "?" and out and out[-1] == "?"):
            out.append(ch)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


# --- Table E.1-1 ------------------------------------------------------------

def check_e1(rows):
    check(isinstance(rows, list) and len(rows) == EXPECT_ROWS,
          f"E.1-1: {len(rows)} rows, expected {EXPECT_ROWS}")
    match = collections.Counter(r["match"] for r in rows)
    check(dict(match) == EXPECT_MATCH, f"E.1-1: match kinds {dict(match)}")
    retired = sum(1 for r in rows if r["retired"])
    check(retired == EXPECT_RETIRED, f"E.1-1: {retired} retired rows")
    for col, want in EXPECT_COLUMNS.items():
        got = collections.Counter(r[col] for r in rows if r[col] is not None)
        check(dict(got) == want, f"E.1-1: column {col}: {dict(got)}, expected {want}")
    for r in rows:
        where = f"E.1-1 row {r['tag']}"
        for col in ["basic_profile"] + OPTIONS:
            check(r[col] in ACTIONS, f"{where}: unknown code {r[col]!r} in {col}")
        check(r["basic_profile"] is not None, f"{where}: no Basic Profile action")
        for col in OPTIONS:
            # fdn_deid__action's precedence is argued for K against C only.
            check(r[col] in (None, "K", "C"), f"{where}: {col} is {r[col]!r}, not K or C")
        check(r["in_std_comp_iod"] in ("Y", "N"), f"{where}: in_std_comp_iod")
        check(isinstance(r["retired"], bool), f"{where}: retired")
        if r["note"] is not None:
            check(EXPECT_NOTES.get(r["name"]) == r["note"], f"{where}: note {r['note']}")
    check(sum(1 for r in rows if r["note"] is not None) == len(EXPECT_NOTES),
          "E.1-1: notes")
    full_vs_mod = sum(1 for r in rows if r["retain_long_full_dates"]
                      != r["retain_long_modified_dates"])
    check(full_vs_mod == EXPECT_FULL_VS_MODIFIED,
          f"E.1-1: Full and Modified Dates differ on {full_vs_mod} rows")

    exact = [r for r in rows if r["match"] == "exact"]
    tags = [hex_tag(r["tag_value"], r["tag"]) for r in exact]
    check(len(set(tags)) == len(tags), "E.1-1: duplicate exact tags")
    for r, t in zip(exact, tags):
        check(r["tag_mask"] == "FFFFFFFF", f"E.1-1 row {r['tag']}: mask {r['tag_mask']}")
        check(r["tag"] == paren_tag(t), f"E.1-1 row {r['tag']}: tag_value {r['tag_value']}")
        g = t >> 16
        # An exact row inside a repeating or private range would be
        # shadowed by nothing but would make the lookup order matter.
        check(g % 2 == 0 and (g & 0xFF00) not in (0x5000, 0x6000),
              f"E.1-1 row {r['tag']}: exact tag in a masked or private range")
        check(r["keyword"] and r["name"] and r["vr"], f"E.1-1 row {r['tag']}: keyword/name/VR")
    for r in rows:
        if r["match"] == "repeating_group":
            check(EXPECT_REPEATING.get(r["tag"]) == (r["tag_value"], r["tag_mask"]),
                  f"E.1-1 row {r['tag']}: value/mask {r['tag_value']}/{r['tag_mask']}")
        elif r["match"] == "private_odd_group":
            check(r["tag_value"] is None and r["tag_mask"] is None,
                  "E.1-1: private rule with value/mask")
            check(r["basic_profile"] == "X" and r["retain_safe_private"] == "C",
                  "E.1-1: private rule actions")
    return exact


def option_conflicts(rows):
    """(row, [(option, code), ...]) for rows whose option cells disagree."""
    out = []
    for r in rows:
        cells = [(o, r[o]) for o in OPTIONS if r[o] is not None]
        if len({c for _, c in cells}) > 1:
            out.append((r, cells))
    return out


def combinable_conflicts(rows):
    """Disagreeing option pairs other than Full vs Modified Dates, which
    exclude each other."""
    out = []
    for r, cells in option_conflicts(rows):
        for (o1, c1), (o2, c2) in itertools.combinations(cells, 2):
            if c1 != c2 and {o1, o2} != {"retain_long_full_dates",
                                         "retain_long_modified_dates"}:
                out.append((r, o1, c1, o2, c2))
    return out


# --- Table E.3.10-1 ---------------------------------------------------------

def check_safe(rows):
    check(isinstance(rows, list) and len(rows) == EXPECT_SAFE_ROWS,
          f"E.3.10-1: {len(rows)} rows, expected {EXPECT_SAFE_ROWS}")
    creators = {r["private_creator"] for r in rows}
    check(len(creators) == EXPECT_SAFE_CREATORS,
          f"E.3.10-1: {len(creators)} creators, expected {EXPECT_SAFE_CREATORS}")
    keys = set()
    for r in rows:
        where = f"E.3.10-1 row {r['tag']} {r['private_creator']!r}"
        g, e, c = r["group"], r["element_offset"], r["private_creator"]
        check(len(g) == 4 and int(g, 16) % 2 == 1, f"{where}: group {g}")
        check(len(e) == 2 and 0 <= int(e, 16) <= 0xFF, f"{where}: offset {e}")
        check(r["tag"].upper() == f"({g.upper()},XX{e.upper()})", f"{where}: tag")
        # Creators are compared after trimming trailing spaces, so the
        # tabled ones must have none; they must fit LO (64 characters).
        check(c and c.isascii() and c == c.strip() and len(c) <= 64,
              f"{where}: creator")
        key = (int(g, 16), int(e, 16), c)
        check(key not in keys, f"{where}: duplicate")
        keys.add(key)
    return sorted(rows, key=lambda r: (int(r["group"], 16),
                                       int(r["element_offset"], 16),
                                       r["private_creator"]))


# --- Types per SOP Class ----------------------------------------------------

def check_iod(iod, e1_rows):
    about = iod["_about"]
    check(about["ps3_3_source"]["edition"] == TYPES_EDITION,
          f"Types edition {about['ps3_3_source']['edition']}, expected {TYPES_EDITION}")
    check(about["counts"] == EXPECT_OCCURRENCES, f"_about.counts {about['counts']}")
    sops = iod["sop_classes"]
    check(len(sops) == EXPECT_SOP_CLASSES, f"{len(sops)} SOP Classes")
    for uid, name in sops.items():
        check(uid.isascii() and all(c in "0123456789." for c in uid) and len(uid) <= 64,
              f"SOP Class UID {uid!r}")
        check(name and name.isascii(), f"IOD name of {uid}")
    without = set(about["sop_classes_without_ciod_data"])
    check(without <= set(sops), "sop_classes_without_ciod_data not in sop_classes")

    composite = {r["tag"]: r for r in e1_rows if r["basic_profile"] in COMPOSITE}
    check(len(composite) == EXPECT_COMPOSITE, f"{len(composite)} composite rows")
    for r in e1_rows:
        for col in OPTIONS:
            check(r[col] not in COMPOSITE, f"{r['tag']}: composite code in {col}")
    attrs = iod["attributes"]
    check(set(attrs) == set(composite), "attributes differ from the composite rows of E.1-1")

    n = top = fg = 0
    strictest = {}   # (sop, path) -> rank
    by_path = {}     # path -> rank across all IODs
    seen_sops = set()
    fallbacks = {}
    for tag, a in attrs.items():
        row = composite[tag]
        t = hex_tag(row["tag_value"], tag)
        check(a["keyword"] == row["keyword"], f"{tag}: keyword")
        want = {c: row[c] for c in ["basic_profile"] + OPTIONS if row[c] is not None}
        check(a["actions"] == want, f"{tag}: actions {a['actions']} vs E.1-1 {want}")
        any_type1 = False
        for o in a["occurrences"]:
            n += 1
            check(o["sop_class_uid"] in sops, f"{tag}: unknown SOP Class {o['sop_class_uid']}")
            check(o["sop_class_uid"] not in without, f"{tag}: occurrence in a class without data")
            check(o["type"] in TYPE_RANK, f"{tag}: Type {o['type']!r}")
            path = tuple(hex_tag(p, f"{tag} path") for p in o["path"].split("/"))
            check(path[-1] == t, f"{tag}: path {o['path']} does not end at the attribute")
            check(len(path) == 1 or "parent_types" in o, f"{tag}: nested without parent_types")
            top += len(path) == 1
            fg += "fg_macro" in o
            rank = TYPE_RANK[o["type"]]
            any_type1 |= rank == 1
            key = (o["sop_class_uid"], path)
            strictest[key] = min(strictest.get(key, 9), rank)
            by_path[(tag, path)] = min(by_path.get((tag, path), 9), rank)
            seen_sops.add(o["sop_class_uid"])
        code = row["basic_profile"]
        want_fb = {"X/Z": "Z", "X/D": "D", "Z/D": "D",
                   "X/Z/D": "D" if any_type1 else "Z",
                   "X/Z/U*": "U*" if any_type1 else "Z"}[code]
        check(a["fallback_action"] == want_fb,
              f"{tag}: fallback_action {a['fallback_action']}, rule gives {want_fb}")
        fallbacks[t] = FALLBACK[want_fb]
        stp = {tuple(int(p, 16) for p in k.split("/")): v
               for k, v in a["strictest_type_by_path"].items()}
        mine = {p: r for (tg, p), r in by_path.items() if tg == tag}
        check({p: TYPE_RANK[v] for p, v in stp.items()} == mine,
              f"{tag}: strictest_type_by_path disagrees with the occurrences")
    check(n == EXPECT_OCCURRENCES["occurrences"], f"{n} occurrences")
    check(top == EXPECT_OCCURRENCES["top_level"], f"{top} top-level occurrences")
    check(fg == EXPECT_OCCURRENCES["fg"], f"{fg} functional-group occurrences")
    check(seen_sops == set(sops) - without, "SOP Classes without occurrences")

    conflicts = set()
    for (tag, path), rank in by_path.items():
        code = composite[tag]["basic_profile"]
        if (code == "X/D" and rank == 2) or (code == "X/Z" and rank == 1):
            conflicts.add((tag, "/".join("%08X" % p for p in path)))
    listed = {(c["tag"], c["path"]) for c in about["code_type_conflicts"]}
    check(conflicts == listed and len(listed) == EXPECT_CODE_TYPE_CONFLICTS,
          f"code/Type conflicts: computed {sorted(conflicts)}, listed {sorted(listed)}")
    return sops, without, strictest, fallbacks


# --- output -----------------------------------------------------------------

def emit(out, e1_rows, exact, safe, sops, without, strictest, fallbacks, hashes):
    w = out.append
    w("/*")
    w(" * DICOM PS3.15 de-identification tables.  GENERATED FILE: DO NOT EDIT.")
    w(" *")
    w(" * Generated by tools/gen_deid_tables.py from")
    for name in (E1_FILE, SAFE_FILE, IOD_FILE):
        w(f" *   {DATA_REL}/{name}")
        w(f" *     SHA-256 {hashes[name]}")
    w(f" * Table E.1-1 and Table E.3.10-1: DICOM PS3.15 {E1_EDITION}.  Attribute Types")
    w(f" * of the composite actions: DICOM PS3.3 {TYPES_EDITION}, SOP Classes of PS3.4.")
    w(f" * Provenance of the data: {DATA_REL}/README.md.")
    w(" * Regenerate with: /usr/bin/python3 tools/gen_deid_tables.py")
    w(" *")
    w(" * The table content is that of the DICOM Standard, copyright NEMA, which")
    w(" * NEMA publishes for free use.")
    w(" *")
    w(" * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0")
    w(" */")
    w("#include \"tables.h\"")
    w("")
    for code, mac in ACTIONS.items():
        enum = "NONE" if code is None else code.replace("/", "_").replace("*", "")
        w(f"#define {mac} FDN_DEID_ACT_{enum}")
    w("#define M_EXACT FDN_DEID_MATCH_EXACT")
    w("#define M_GROUP FDN_DEID_MATCH_REPEATING_GROUP")
    w("#define M_PRIVATE FDN_DEID_MATCH_PRIVATE")
    w("")

    # Rows where options in use together fill cells differently; tables.h
    # (fdn_deid__action) says which wins and why.
    comb = combinable_conflicts(e1_rows)
    w("/*")
    w(" * Option conflicts (fdn_deid__action: the most protective action wins).")
    w(f" * Retain Long. Full Dates K vs Modified Dates C: {EXPECT_FULL_VS_MODIFIED} rows (options")
    w(" * that exclude each other).  Options that can be combined:")
    for r, o1, c1, o2, c2 in comb:
        w(f" *   {r['tag']} {r['name']}: {o1} {c1} vs {o2} {c2}")
    w(" */")
    w("")

    w("/* Table E.1-1: " + f"{len(exact)} exact rows by tag, then masks, then the private rule. */")
    w("const fdn_deid_rule fdn_deid__rules[] = {")
    ordered = sorted(exact, key=lambda r: int(r["tag_value"], 16))
    masked = sorted((r for r in e1_rows if r["match"] == "repeating_group"),
                    key=lambda r: int(r["tag_value"], 16))
    private = [r for r in e1_rows if r["match"] == "private_odd_group"]
    for r in ordered + masked + private:
        tag = int(r["tag_value"], 16) if r["tag_value"] else 0
        mask = int(r["tag_mask"], 16) if r["tag_mask"] else 0
        opts = ", ".join(ACTIONS[r[o]] for o in OPTIONS)
        opt_set = sum(1 << i for i, o in enumerate(OPTIONS) if r[o] is not None)
        fb = fallbacks.get(tag, "A__") if r["match"] == "exact" else "A__"
        match = {"exact": "M_EXACT", "repeating_group": "M_GROUP",
                 "private_odd_group": "M_PRIVATE"}[r["match"]]
        w(f"\t{{ 0x{tag:08X}u, 0x{mask:08X}u, {c_str(r['keyword'])}, {c_str(r['name'])},")
        w(f"\t  {c_str(r['vr'])}, {ACTIONS[r['basic_profile']]}, {{ {opts} }},")
        w(f"\t  {fb}, {match}, {r['note'] or 0}, {'true' if r['retired'] else 'false'}, "
          f"{'true' if r['in_std_comp_iod'] == 'Y' else 'false'}, 0x{opt_set:03X}u }},")
    w("};")
    w(f"const size_t fdn_deid__rule_count = {len(e1_rows)};")
    w("")
    w("const uint32_t fdn_deid__exact_tags[] = {")
    tags = [int(r["tag_value"], 16) for r in ordered]
    for i in range(0, len(tags), 6):
        w("\t" + " ".join(f"0x{t:08X}u," for t in tags[i:i + 6]))
    w("};")
    w(f"const size_t fdn_deid__exact_count = {len(tags)};")
    w("")

    w("/* Table E.3.10-1, by group, element offset and creator. */")
    w("const fdn_deid_safe_private_row fdn_deid__safe_private_rows[] = {")
    for r in safe:
        w(f"\t{{ 0x{int(r['group'], 16):04X}, 0x{int(r['element_offset'], 16):02X}, "
          f"{c_str(r['private_creator'])}, {c_str(r['vr'])}, {c_str(r['vm'])},")
        w(f"\t  {c_str(r['meaning'])} }},")
    w("};")
    w(f"const size_t fdn_deid__safe_private_count = {len(safe)};")
    w("")

    paths = sorted({p for _, p in strictest})
    check(len(paths) < (1 << 14), "too many paths for the 14-bit packing")
    index = {p: i for i, p in enumerate(paths)}
    w("/* Paths from the top-level Data Set to each place a composite-action")
    w(" * attribute occurs, sorted by their tags. */")
    w("const uint32_t fdn_deid__path_tags[] = {")
    first = []
    pos = 0
    for i, p in enumerate(paths):
        first.append(pos)
        pos += len(p)
        w(f"\t/* {i:3d} */ " + " ".join(f"0x{t:08X}u," for t in p))
    w("};")
    check(pos < (1 << 16), "path tags overflow uint16_t")
    w("const fdn_deid_path fdn_deid__paths[] = {")
    for i in range(0, len(paths), 6):
        w("\t" + " ".join(f"{{ {first[j]}, {len(paths[j])} }},"
                          for j in range(i, min(i + 6, len(paths)))))
    w("};")
    w(f"const size_t fdn_deid__path_count = {len(paths)};")
    w("")

    uids = sorted(sops)
    w("/* Per SOP Class: (path index << 2) | strictest Type (1, 2, 3). */")
    w("const uint16_t fdn_deid__occurrences[] = {")
    ranges = {}
    total = 0
    for uid in uids:
        occ = sorted((index[p], rank) for (u, p), rank in strictest.items() if u == uid)
        ranges[uid] = (total, len(occ))
        total += len(occ)
        if not occ:
            continue
        w(f"\t/* {uid} {sops[uid]} */")
        vals = [f"0x{(pi << 2) | rank:04X}," for pi, rank in occ]
        for i in range(0, len(vals), 10):
            w("\t" + " ".join(vals[i:i + 10]))
    w("};")
    check(total < (1 << 16), "occurrences overflow uint16_t")
    w(f"const size_t fdn_deid__occurrence_count = {total};")
    w("")
    w("/* By UID; Basic Directory has no IOD data and counts as unknown. */")
    w("const fdn_deid_sop_class fdn_deid__sop_classes[] = {")
    for uid in uids:
        f, c = ranges[uid]
        w(f"\t{{ {c_str(uid)}, {c_str(sops[uid])}, {f}, {c}, "
          f"{'false' if uid in without else 'true'} }},")
    w("};")
    w(f"const size_t fdn_deid__sop_class_count = {len(uids)};")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, DATA_REL))
    ap.add_argument("--output", default=os.path.join(ROOT, OUTPUT_REL))
    ap.add_argument("--conflicts", action="store_true")
    args = ap.parse_args()

    e1, h_e1 = load(args.data, E1_FILE)
    safe, h_safe = load(args.data, SAFE_FILE)
    iod, h_iod = load(args.data, IOD_FILE)
    exact = check_e1(e1)
    safe_sorted = check_safe(safe)
    sops, without, strictest, fallbacks = check_iod(iod, e1)

    if args.conflicts:
        for r, cells in option_conflicts(e1):
            print(r["tag"], r["name"], r["basic_profile"],
                  " ".join(f"{o}={c}" for o, c in cells))
        print("combinable:")
        for r, o1, c1, o2, c2 in combinable_conflicts(e1):
            print(" ", r["tag"], r["name"], f"{o1} {c1} vs {o2} {c2}")
        return 0

    hashes = {E1_FILE: h_e1, SAFE_FILE: h_safe, IOD_FILE: h_iod}
    text = emit([], e1, exact, safe_sorted, sops, without, strictest, fallbacks,
                hashes)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    # Replace atomically: a failed run never leaves half a tables.c.
    out_dir = os.path.dirname(os.path.abspath(args.output))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tables.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, args.output)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
