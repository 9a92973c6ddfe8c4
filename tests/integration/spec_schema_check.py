#!/usr/bin/python3
"""spec_schema_check.py SCHEMA SPEC_DOCS_BIN FILE... — schema agreement.

For every YAML document in every FILE, banger's C validator (through the
spec-docs helper) and schema/vm.schema.json (Draft 2020-12, via
python3-jsonschema) must agree on valid/invalid. For valid documents the C
canonical JSON must equal the document with defaults filled, serialised with
sorted keys and no whitespace, and must itself validate against the schema.

The Python side reads YAML the way banger documents it (docs/spec.md): YAML
1.2 core scalars with decimal integers only, anchors/aliases/tags and
duplicate keys refused, a repeated metadata.name in one file makes the later
document invalid, empty documents are skipped. Those rules are outside what
a JSON Schema can say; everything else is the schema's job.

Files under a directory named "valid" must be entirely valid, files under
"invalid" must contain at least one invalid document, so the corpus cannot
silently stop testing what it claims. Prints TAP; exit 1 on any mismatch.
"""
import json
import math
import re
import subprocess
import sys

import jsonschema
import yaml


class Loader(yaml.SafeLoader):
    pass


Loader.yaml_implicit_resolvers = {}
for tag, rx in [
    ("null", r"^(?:~|null|Null|NULL|)\Z"),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)\Z"),
    ("int", r"^[-+]?[0-9]+\Z"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"),
]:
    Loader.add_implicit_resolver("tag:yaml.org,2002:" + tag, re.compile(rx), None)


def _float(loader, node):
    v = loader.construct_scalar(node)
    low = v.lower()
    if low.endswith(".inf"):
        return -math.inf if v.startswith("-") else math.inf
    if low == ".nan":
        return math.nan
    return float(v)


Loader.add_constructor("tag:yaml.org,2002:int",
                       lambda l, n: int(l.construct_scalar(n), 10))
Loader.add_constructor("tag:yaml.org,2002:float", _float)
Loader.add_constructor("tag:yaml.org,2002:bool",
                       lambda l, n: l.construct_scalar(n).lower() == "true")


def yaml_level_problems(text):
    """Per document index: True when it uses anchors, aliases or tags."""
    bad, doc = {}, -1
    for ev in yaml.parse(text, Loader):
        if isinstance(ev, yaml.DocumentStartEvent):
            doc += 1
        elif isinstance(ev, yaml.AliasEvent):
            bad[doc] = True
        elif isinstance(ev, (yaml.ScalarEvent, yaml.SequenceStartEvent,
                             yaml.MappingStartEvent)):
            if ev.anchor is not None or ev.tag is not None:
                bad[doc] = True
    return bad


def has_duplicate_keys(node):
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            keys = [(k.tag, k.value) for k, _ in n.value
                    if isinstance(k, yaml.ScalarNode)]
            if len(keys) != len(set(keys)):
                return True
            for k, v in n.value:
                stack += [k, v]
        elif isinstance(n, yaml.SequenceNode):
            stack += n.value
    return False


def python_verdicts(path, validator):
    """List of (valid, canonical-or-None) per non-empty document, or None
    when the file cannot be read as a whole."""
    try:
        text = open(path, "rb").read().decode("utf-8")
        bad = yaml_level_problems(text)
        loader = Loader(text)
        out, names, idx = [], set(), -1
        try:
            while loader.check_node():
                node = loader.get_node()
                idx += 1
                data = loader.construct_document(node)
                if data is None and not bad.get(idx):
                    continue
                ok = not bad.get(idx) and not has_duplicate_keys(node)
                name = data.get("metadata", {}).get("name") \
                    if isinstance(data, dict) and isinstance(data.get("metadata"), dict) \
                    else None
                if isinstance(name, str) and "\0" not in name:
                    if name in names:
                        ok = False
                    names.add(name)
                ok = ok and validator.is_valid(data)
                out.append((ok, canonical(data) if ok else None))
        finally:
            loader.dispose()
        return out
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None


def canonical(doc):
    """The document with banger's defaults filled, as canonical JSON."""
    d = json.loads(json.dumps(doc))
    md = d["metadata"]
    md.setdefault("labels", {})
    s = d["spec"]
    s.setdefault("state", "Running")
    s.setdefault("vcpus", 1)
    s.setdefault("memoryMiB", 256)
    s.setdefault("restartPolicy", "Always")
    s.setdefault("network", {}).setdefault("enabled", True)
    if "mac" in s["network"]:
        s["network"]["mac"] = s["network"]["mac"].lower()
    s.setdefault("readiness", {}).setdefault("timeoutSeconds", 120)

    def ints(x):
        if isinstance(x, dict):
            return {k: ints(v) for k, v in x.items()}
        if isinstance(x, float) and x == int(x):
            return int(x)
        return x
    return json.dumps(ints(d), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def c_verdicts(helper, files):
    out = subprocess.run([helper] + files, check=True, capture_output=True,
                         text=True).stdout
    res, cur = {}, None
    for line in out.splitlines():
        if line.startswith("file "):
            cur = line[5:]
            res[cur] = []
        elif line == "unreadable":
            res[cur] = None
        elif res[cur] is not None:
            ok = line.startswith("valid ")
            res[cur].append((ok, line[6:] if ok else None))
    return res


def main():
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft202012Validator(schema)
    files = sys.argv[3:]
    cres = c_verdicts(sys.argv[2], files)
    n = failed = 0

    def tap(ok, msg):
        nonlocal n, failed
        n += 1
        failed += not ok
        print(("ok" if ok else "not ok") + f" {n} - {msg}")

    for f in files:
        py, c = python_verdicts(f, validator), cres[f]
        if py is None or c is None:
            tap(py is None and c is None,
                f"{f}: both unreadable (C {'unreadable' if c is None else 'read'},"
                f" python {'unreadable' if py is None else 'read'})")
            continue
        pv, cv = [v for v, _ in py], [v for v, _ in c]
        tap(pv == cv, f"{f}: C {cv} == schema {pv}")
        for i, ((_, pj), (_, cj)) in enumerate(zip(py, c)):
            if cj is None:
                continue
            tap(validator.is_valid(json.loads(cj)), f"{f}#{i}: canonical JSON matches the schema")
            if pj is not None and pj != cj:
                print(f"#   C:      {cj}\n#   python: {pj}")
            tap(pj == cj, f"{f}#{i}: canonical JSON == document with defaults")
        if "/invalid/" in f:
            tap(not all(cv), f"{f}: corpus file under invalid/ has an invalid document")
        elif "/valid/" in f or "/examples/" in f:
            tap(all(cv) and cv, f"{f}: corpus file is all valid")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
