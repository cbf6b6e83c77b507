#!/usr/bin/python3
"""The exported symbols of libfednode equal the version script's list and
the functions the public headers declare with FDN_EXTERN; every one is
fdn_-prefixed and bound to the node the map gives it; the soname is
libfednode.so.<major>.

usage: check-exports.py LIBRARY MAPFILE SONAME HEADER...
"""
import re
import subprocess
import sys


def map_symbols(path):
    text = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
    symbols = {}
    for node, body in re.findall(r"(FEDNODE_[0-9.]+)\s*\{(.*?)\}", text, re.S):
        glob = body.split("local:")[0].replace("global:", "")
        for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*;", glob):
            if name in symbols:
                sys.exit(f"{name} is listed twice in {path}")
            symbols[name] = node
    return symbols


def header_symbols(paths):
    names = set()
    for path in paths:
        text = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
        # drop preprocessor lines (the FDN_EXTERN definition itself)
        text = re.sub(r"^\s*#.*?(?<!\\)$", "", text, flags=re.M)
        for m in re.finditer(r"FDN_EXTERN\((?:[^()]|\([^()]*\))*\)\s*\**\s*"
                             r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
            names.add(m.group(1))
    return names


def library_symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] == "A":
            continue  # version nodes themselves
        name, _, node = parts[2].partition("@@")
        symbols[name] = node or None
    return symbols


def soname(lib):
    out = subprocess.run(["readelf", "-d", lib], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", out)
    return m.group(1) if m else None


def main():
    lib, mapfile, expected_soname, headers = (sys.argv[1], sys.argv[2],
                                              sys.argv[3], sys.argv[4:])
    failures = []
    in_map = map_symbols(mapfile)
    in_headers = header_symbols(headers)
    in_lib = library_symbols(lib)

    def diff(a, an, b, bn):
        for name in sorted(set(a) - set(b)):
            failures.append(f"{name}: in {an} but not in {bn}")

    diff(in_lib, "the library", in_map, "the map")
    diff(in_map, "the map", in_lib, "the library")
    diff(in_headers, "the headers", in_map, "the map")
    diff(in_map, "the map", in_headers, "the headers")
    for name, node in sorted(in_lib.items()):
        if not name.startswith("fdn_") or name.startswith("fdn__"):
            failures.append(f"{name}: exported but not a public fdn_ name")
        if name in in_map and node != in_map[name]:
            failures.append(f"{name}: bound to {node}, the map says {in_map[name]}")
    got = soname(lib)
    if got != expected_soname:
        failures.append(f"soname is {got}, expected {expected_soname}")
    for f in failures:
        print("FAIL:", f)
    print(f"{len(in_lib)} exported symbols, {len(in_map)} in the map, "
          f"{len(in_headers)} declared; soname {got}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
