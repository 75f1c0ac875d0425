#!/usr/bin/env python3
"""YAML 1.1 check of aws-auth edits (defect 8).

The authenticator reads aws-auth with go-yaml v2 (YAML 1.1); PyYAML's
`safe_load` is a YAML 1.1 reader. Input: JSON lines written by
`functions/core/tests/aws_auth_corpus.rs`, one per edited key:

  {"key", "before", "after", "foreign_before": [i], "foreign_after": [j],
   "ours_after": k | null, "ours": {"rolearn", "username", "groups"}}

`yaml.safe_load` semantics (SafeLoader, or CSafeLoader when PyYAML has
libyaml). Asserts, for each: both texts load; the entries we do not own load the same
before and after; the after list holds exactly those plus ours; ours (when
given) loads with string values equal to what we want. Prints
`yaml11 records=N foreign_entries_checked=K failures=F`; exits 1 on failure.
"""

import json
import sys

import yaml


def field(entry, name):
    for k, v in entry.items():
        if isinstance(k, str) and k.lower() == name:
            return v
    return None


# PyYAML's safe loader; its libyaml binding (same YAML 1.1 resolver) when built in.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def as_list(text):
    loaded = yaml.load(text, Loader=LOADER)
    return [] if loaded is None else loaded


def check(rec):
    before = as_list(rec["before"])
    after = as_list(rec["after"])
    ours_at = rec["ours_after"]
    want_len = len(rec["foreign_after"]) + (0 if ours_at is None else 1)
    if len(after) != want_len:
        return f"{len(after)} entries after, expected {want_len}"
    fb = [before[i] for i in rec["foreign_before"]]
    fa = [after[j] for j in rec["foreign_after"]]
    if fb != fa:
        diff = [(b, a) for b, a in zip(fb, fa) if b != a]
        return f"foreign entries read differently under YAML 1.1: {diff[:2]}"
    if ours_at is not None:
        ours = after[ours_at]
        want = rec["ours"]
        for name in ("rolearn", "username"):
            value = field(ours, name)
            if not isinstance(value, str) or value != want[name]:
                return f"our {name} reads {value!r} under YAML 1.1"
        groups = field(ours, "groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return f"our groups read {groups!r} under YAML 1.1"
        if groups != want["groups"]:
            return f"our groups read {groups!r}, want {want['groups']!r}"
    return None


def main(path):
    records = checked = 0
    failures = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            rec = json.loads(line)
            records += 1
            try:
                problem = check(rec)
            except yaml.YAMLError as e:
                problem = f"does not load under YAML 1.1: {e}"
            if problem:
                failures.append(f"line {n} ({rec['key']}): {problem}\nbefore={rec['before']!r}\nafter={rec['after']!r}")
            else:
                checked += len(rec["foreign_before"])
    print(f"yaml11 records={records} foreign_entries_checked={checked} failures={len(failures)}")
    for fail in failures[:5]:
        print(fail, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
