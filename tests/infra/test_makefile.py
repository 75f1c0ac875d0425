"""The Makefile's targets: present, wired to the right commands, and the
sandbox start/stop logic exercised against a stand-in sandbox binary."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EVENTS = sorted(p.stem for p in (ROOT / "events").glob("*.json"))

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is required")


def make(*args, check=True, timeout=60):
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def dry(*args):
    return make("-n", *args).stdout


@pytest.mark.parametrize(
    "target",
    ["tools", "build", "deploy", "lint", "test", "demo", "sandbox-up", "sandbox-down", "repair", "repair-dry-run"]
    + [f"invoke-{e}" for e in EVENTS],
)
def test_target_exists(target):
    assert make("-n", target, check=False).returncode == 0, target


def test_bench_builds_release_binaries_and_writes_the_report():
    out = dry("bench")
    build = out.index("cargo build --release")
    for package in ("iam-events", "reconcile", "eks-access-sync-cli", "bench-hello", "bench"):
        assert f"-p {package}" in out[build:], package
    run = out.index("release/bench ")
    assert build < run
    assert "--out BENCHMARKS.md" in out[run:]


FUZZ_TARGETS = ["event_classifier", "trust_policy", "aws_auth", "config", "arn_token"]


def test_fuzz_installs_its_tools_and_runs_every_target_apart_from_test():
    out = dry("fuzz")
    assert "rustup toolchain install nightly --profile minimal" in out
    assert "cargo install cargo-fuzz --version" in out and "--locked" in out
    assert "-runs=10000000" in out
    assert "for t in " + " ".join(FUZZ_TARGETS) + ";" in out
    assert "tests/fuzz/summary.tsv" in out
    capped = dry("fuzz", "FUZZ_SECONDS=7")
    assert '"-runs=10000000 -max_total_time=7"' in capped, "runs capped by time"
    smoke = dry("fuzz-smoke")
    assert '"-runs=20000"' in smoke and "summary-smoke.tsv" in smoke
    assert "cargo +nightly fuzz" not in dry("test")
    for t in FUZZ_TARGETS:
        assert (ROOT / "tests" / "fuzz" / "fuzz_targets" / f"{t}.rs").is_file(), t


def test_test_runs_cargo_then_pytest():
    out = dry("test")
    assert out.index("cargo test --workspace") < out.index("pytest -q tests/infra")


def test_test_builds_the_shipped_binaries_before_the_runtime_api_test():
    out = dry("test")
    release = out.index("cargo build --release -p iam-events -p reconcile")
    assert release < out.index("cargo test --workspace")
    # arm64 (qemu, minutes of build) stays out of make test.
    assert "qemu" not in out and "--arm64" not in out


def test_invoke_local_runs_a_release_binary_against_the_sandbox():
    out = dry("invoke-local", "EVENT=events/iam-tag-user.json")
    assert "cargo build --release -p iam-events -p reconcile" in out
    assert "release/iam-events" in out and "--env-file" in out
    assert "events/iam-tag-user.json" in out
    out = dry("invoke-local", "EVENT=events/schedule.json")
    assert "release/reconcile" in out
    assert make("invoke-local", check=False).returncode != 0


def test_verify_arm64_runs_the_cargo_lambda_arm64_artifacts_under_qemu():
    out = dry("verify-arm64")
    assert "--arm64" in out and "qemu-aarch64-static -L /usr/aarch64-linux-gnu" in out
    assert "LAMBDA_RUNNER=" in out and "--test shipped" in out


def test_lint_runs_every_linter():
    out = dry("lint")
    for command in (
        "cargo fmt --all --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
        "cfn-lint infra/template.yaml",
        "cfn-lint infra/member.yaml",
        "validate --lint --region us-east-1 -t infra/template.yaml",
    ):
        assert command in out, command


def test_build_architecture():
    assert "--x86-64" in dry("build")
    assert "--arm64" in dry("build", "ARCH=arm64")


@pytest.mark.parametrize("event", EVENTS)
def test_invoke_routes_to_the_right_function(event):
    out = dry(f"invoke-{event}")
    expected = "IamEventsFunctionName" if event.startswith("iam-") else "ReconcileFunctionName"
    assert f"key={expected}" in out
    assert f"fileb://events/{event}.json" in out


def test_repair_payloads():
    assert "fileb://events/reconcile-apply.json" in dry("repair")
    assert "fileb://events/reconcile-dry-run.json" in dry("repair-dry-run")


FAKE_SANDBOX = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Stand-in for eks-sandbox: `up --dir D` writes D/sandbox.pid, starts a child
    # (as the real one starts moto_server), then writes D/env and stays up.
    set -eu
    if [ "$1" = up ]; then
      dir=$3
      echo $$ > "$dir/sandbox.pid"
      sleep 300 &
      echo $! > "$dir/child.pid"
      sleep 0.3
      echo "export AWS_REGION=us-east-1" > "$dir/env"
      wait
    fi
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_sandbox_up_and_down_with_a_stand_in(tmp_path):
    target = tmp_path / "target"
    (target / "debug").mkdir(parents=True)
    fake = target / "debug" / "eks-sandbox"
    fake.write_text(FAKE_SANDBOX)
    fake.chmod(0o755)
    sandbox = tmp_path / "sandbox"
    args = ["CARGO=true", f"TARGET_DIR={target}", f"SANDBOX_DIR={sandbox}"]

    pid = child = None
    try:
        up = make("sandbox-up", *args)
        assert "sandbox up" in up.stdout
        assert (sandbox / "env").read_text().startswith("export ")
        pid = int((sandbox / "sandbox.pid").read_text())
        child = int((sandbox / "child.pid").read_text())
        assert alive(pid) and alive(child)

        again = make("sandbox-up", *args)
        assert "already running" in again.stdout
        assert int((sandbox / "sandbox.pid").read_text()) == pid

        down = make("sandbox-down", *args)
        assert "sandbox stopped" in down.stdout
        deadline = time.monotonic() + 5
        while (alive(pid) or alive(child)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid), "sandbox still running"
        assert not alive(child), "the sandbox's child outlived it"
        assert not (sandbox / "sandbox.pid").exists()
        assert not (sandbox / "env").exists()

        assert "no sandbox running" in make("sandbox-down", *args).stdout
    finally:
        for p in (pid, child):
            if p is not None and alive(p):
                os.kill(p, signal.SIGKILL)


def test_sandbox_up_reports_a_crashed_sandbox(tmp_path):
    target = tmp_path / "target"
    (target / "debug").mkdir(parents=True)
    fake = target / "debug" / "eks-sandbox"
    fake.write_text("#!/bin/sh\necho 'port 4566 already in use' >&2\nexit 3\n")
    fake.chmod(0o755)
    result = make("sandbox-up", "CARGO=true", f"TARGET_DIR={target}", f"SANDBOX_DIR={tmp_path / 'sb'}", check=False)
    assert result.returncode != 0
    assert "port 4566 already in use" in result.stdout


def test_soak_runs_the_producers_then_the_soak_program():
    out = make("-n", "soak", "SOAK_SKIP_FUZZ=1").stdout
    corpus = out.index("AWSAUTH_CORPUS_DOCS=100000 cargo test -p eks-access-sync --test it aws_auth_corpus::")
    secrets = out.index("cargo test -p e2e --test it secrets::")
    run = out.index("debug/soak --out RELIABILITY.md")
    assert corpus < run and secrets < run
    assert "--corpus-log" in out[run:] and "--secrets-log" in out[run:]
    assert "--quick" not in out
    assert "fuzzing skipped" in out


def test_soak_quick_is_short_and_names_no_producers():
    out = dry("soak-quick")
    assert "cargo build -p soak" in out
    assert "debug/soak --quick --out RELIABILITY.md" in out
    assert "AWSAUTH_CORPUS_DOCS" not in out
