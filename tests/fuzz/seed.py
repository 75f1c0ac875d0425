#!/usr/bin/env python3
"""Fills tests/fuzz/corpus/<target>/ with seeds (`make fuzz` runs it first).

Sources: the committed hand-written seeds (tests/fuzz/seeds/<target>/), the crashes
found so far (tests/fuzz/regressions/<target>/), the sample
events (events/*.json), and the string fixtures of the core's tests
(functions/core/tests/*.rs: raw strings r#"..."# and `const X: &str = "..."`),
sorted by shape: EventBridge events, trust policies, aws-auth mapRoles/mapUsers.
Seeds are named by content hash, so running it again adds nothing twice.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
TARGETS = ["event_classifier", "trust_policy", "aws_auth", "config", "arn_token"]


def put(corpus, target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def rust_strings(text):
    for m in re.finditer(r'r#"(.*?)"#', text, re.S):
        yield m.group(1)
    for m in re.finditer(r'const \w+: &str =\s*"((?:[^"\\]|\\.)*)";', text, re.S):
        s = m.group(1)
        s = s.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        s = re.sub(r"\\\n\s*", "", s)  # line continuations
        yield s


def main(corpus):
    for t in TARGETS:
        os.makedirs(os.path.join(corpus, t), exist_ok=True)
        # Hand-written seeds, and every crash found so far (replayed on each run).
        for sub in ("seeds", "regressions"):
            for f in glob.glob(os.path.join(FUZZ, sub, t, "*")):
                shutil.copy(f, os.path.join(corpus, t, os.path.basename(f)))

    events = []
    for f in sorted(glob.glob(os.path.join(ROOT, "events", "*.json"))):
        with open(f, "rb") as fh:
            events.append(fh.read())
    policies, yamls = [], []
    for f in sorted(glob.glob(os.path.join(ROOT, "functions", "core", "tests", "*.rs"))):
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        for s in rust_strings(text):
            st = s.strip()
            try:
                v = json.loads(st)
            except ValueError:
                v = None
            if isinstance(v, dict) and "detail-type" in v:
                events.append(s.encode())
            elif isinstance(v, dict) and "Statement" in v:
                policies.append(s)
            elif isinstance(v, list) or st.startswith("- "):
                yamls.append(s)
    for e in events:
        put(corpus, "event_classifier", e)
    for p in policies:
        put(corpus, "trust_policy", p)
        put(corpus, "arn_token", b"\x03" + p.encode())
    users = [y for y in yamls if "userarn" in y.lower()] + [""]
    roles = [y for y in yamls if "userarn" not in y.lower()] + [""]
    accounts = '- "123456789012"\n- "210987654321"\n'
    for r in roles:
        for u in users:
            for ctrl in (0x00, 0x20, 0x40, 0x80, 0xC0):
                body = "\0".join([r, u, accounts, "free text: [\n"])
                put(corpus, "aws_auth", bytes([ctrl]) + body.encode())
    print(
        f"seeded {corpus}: {len(events)} events, {len(policies)} policies, "
        f"{len(roles)} x {len(users)} aws-auth combinations"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(FUZZ, "corpus"))
