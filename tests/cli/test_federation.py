"""Federated averaging through the CLI, with real processes: `fednode demo`,
then federations run with `fednode federation`, `coordinator` and `node`
on the demo's sites — a coordinator killed and restarted mid-round, a site
killed and rejoining, and sites training in numpy (examples/python)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

CLI = os.environ.get("FEDNODE_CLI")
LIBRARY = os.environ.get("FEDNODE_LIBRARY")
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
pytestmark = pytest.mark.skipif(not CLI, reason="FEDNODE_CLI not set")

SITES = ("site-a", "site-b", "site-c")


def run(*args, timeout=120):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default demo (3 sites x 400 patients, 25 rounds), run once."""
    out = tmp_path_factory.mktemp("demo") / "out"
    started = time.monotonic()
    r = run("demo", "--out", str(out), timeout=300)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout, elapsed


def test_demo_outputs(demo):
    out, stdout, elapsed = demo
    assert elapsed < 120
    assert stdout.count(" round ") == 25
    assert "Audit chains intact: 3 of 3" in stdout
    assert f"Outputs in {out}" in stdout
    report = (out / "report.md").read_text()
    assert "| federated (final global model) |" in report
    svg = (out / "report.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 6
    for name in ("final-model.safetensors", "central-model.safetensors"):
        assert (out / name).stat().st_size > 2 * 256 * 4
    # Only sealed envelopes in the store, never an image.
    for root, _, files in os.walk(out / "store"):
        for f in files:
            assert f.endswith(".fdne") or f == "latest"
            with open(os.path.join(root, f), "rb") as fh:
                assert fh.read(4) == b"FDNE"


def test_demo_federated_close_to_central(demo):
    _, stdout, _ = demo
    fed = float(stdout.split("federated   ")[1].split()[0])
    central = float(stdout.split("centralised ")[1].split()[0])
    assert fed > 0.8
    assert abs(fed - central) <= 0.02, (fed, central)


def test_demo_refuses_existing_out_and_bad_options(demo, tmp_path):
    out, _, _ = demo
    r = run("demo", "--out", str(out))
    assert r.returncode == 1 and "exists" in r.stderr
    r = run("demo", "--sites", "1", "--out", str(tmp_path / "x"))
    assert r.returncode == 2


def fed_options(out, site, fed):
    node = out / site if site else out / "coordinator"
    return ["--store", f"file://{out}/store", "--identity", str(node / "identity.key"),
            "--trust", str(node / "trust.json"), "--id", fed]


def create(out, fed, tmp_path, **extra):
    manifest = tmp_path / f"{fed}.json"
    args = ["federation", "create", *fed_options(out, None, fed), "--sites", ",".join(SITES),
            "--rounds", "4", "--lr", "0.5", "--seed", "9", "--out", str(manifest)]
    for k, v in extra.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert "manifest digest" in r.stdout
    for site in SITES:
        r = run("federation", "show", *fed_options(out, site, fed))
        assert r.returncode == 0 and "Strategy" in r.stdout and site in r.stdout, r.stderr
        r = run("federation", "approve", *fed_options(out, site, fed), "--registry",
                str(out / site / "registry"), "--note", "pytest")
        assert r.returncode == 0 and "approved" in r.stdout, r.stderr
    return manifest


def start_coordinator(out, fed, manifest, tmp_path, log):
    return subprocess.Popen([CLI, "coordinator", *fed_options(out, None, fed), "--state",
                             str(tmp_path / f"{fed}-state"), "--manifest", str(manifest),
                             "--poll-ms", "20", "--out", str(tmp_path / f"{fed}-final")],
                            stdout=log, stderr=subprocess.STDOUT)


def start_node(out, fed, site, log):
    return subprocess.Popen([CLI, "node", *fed_options(out, site, fed), "--registry",
                             str(out / site / "registry"), "--cohort", "demo-train",
                             "--poll-ms", "20"], stdout=log, stderr=subprocess.STDOUT)


def results(tmp_path, fed):
    try:
        with open(tmp_path / f"{fed}-state" / "checkpoint.json") as f:
            return json.load(f)["results"]
    except (OSError, ValueError):
        return []


def wait(procs, timeout=120):
    for p in procs:
        assert p.wait(timeout=timeout) == 0


def test_coordinator_killed_and_restarted(demo, tmp_path):
    out, _, _ = demo
    log = open(tmp_path / "log.txt", "w")
    # Uninterrupted reference run.
    m = create(out, "ref", tmp_path)
    procs = [start_coordinator(out, "ref", m, tmp_path, log)]
    procs += [start_node(out, "ref", s, log) for s in SITES]
    wait(procs)
    # The same federation (same seed), its coordinator killed mid-round.
    m = create(out, "crash", tmp_path)
    nodes = [start_node(out, "crash", s, log) for s in SITES]
    coord = start_coordinator(out, "crash", m, tmp_path, log)
    deadline = time.monotonic() + 60
    while len(results(tmp_path, "crash")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    coord.send_signal(signal.SIGKILL)
    coord.wait()
    assert 2 <= len(results(tmp_path, "crash")) < 4
    coord = start_coordinator(out, "crash", m, tmp_path, log)
    wait([coord] + nodes)
    ref = (tmp_path / "ref-final").read_bytes()
    assert (tmp_path / "crash-final").read_bytes() == ref
    assert [r["round"] for r in results(tmp_path, "crash")] == [1, 2, 3, 4]


def test_site_killed_and_rejoining(demo, tmp_path):
    out, _, _ = demo
    log = open(tmp_path / "log.txt", "w")
    m = create(out, "dropout", tmp_path, quorum=2, round_timeout=1)
    coord = start_coordinator(out, "dropout", m, tmp_path, log)
    nodes = [start_node(out, "dropout", s, log) for s in SITES[:2]]
    # site-c is down for the first rounds: they close with the quorum.
    deadline = time.monotonic() + 60
    while len(results(tmp_path, "dropout")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    nodes.append(start_node(out, "dropout", "site-c", log))
    wait([coord] + nodes)
    rounds = results(tmp_path, "dropout")
    present = [{a["site"] for a in r["aggregated"]} for r in rounds]
    assert "site-c" not in present[0] and "site-c" not in present[1]
    assert "site-c" in present[-1]
    assert all(len(p) >= 2 for p in present)
    # site-c's registry records only the rounds it took part in.
    r = run("registry", str(out / "site-c" / "registry"), "audit")
    done = [json.loads(line)["details"]["round"] for line in r.stdout.splitlines()
            if '"round.participate"' in line and '"dropout"' in line]
    assert done and min(done) >= 2


def test_numpy_sites(demo, tmp_path):
    """Sites whose training is numpy (examples/python/numpy_site.py) behind
    the C client, with the CLI coordinator."""
    if not LIBRARY:
        pytest.skip("FEDNODE_LIBRARY not set")
    out, _, _ = demo
    log = open(tmp_path / "log.txt", "w")
    m = create(out, "numpy", tmp_path)
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE, "bindings", "python"))
    coord = start_coordinator(out, "numpy", m, tmp_path, log)
    nodes = [subprocess.Popen(["/usr/bin/python3", os.path.join(SOURCE, "examples", "python",
                                                                "numpy_site.py"),
                               *fed_options(out, s, "numpy"), "--registry",
                               str(out / s / "registry"), "--cohort", "demo-train",
                               "--eval-cohort", "demo-test", "--poll", "0.02"],
                              stdout=log, stderr=subprocess.STDOUT, env=env) for s in SITES]
    wait([coord] + nodes)
    last = results(tmp_path, "numpy")[-1]
    accuracies = [a["metrics"]["eval"]["accuracy"] for a in last["aggregated"]]
    assert len(accuracies) == 3 and min(accuracies) > 0.7, accuracies


@pytest.mark.skipif(not any(os.access(p, os.X_OK) for p in ("/usr/sbin/nginx", "/usr/bin/nginx")),
                    reason="nginx is not installed")
def test_demo_over_https(tmp_path):
    """The demo through a real nginx on 127.0.0.1: TLS 1.3, a client
    certificate per node, per-site write paths.  nginx's entity tags have
    one-second resolution: rounds closing within a second must still be
    seen."""
    out = tmp_path / "out"
    r = run("demo", "--https", "--patients", "40", "--rounds", "6", "--out", str(out),
            timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Store: nginx on https://127.0.0.1:" in r.stdout
    assert r.stdout.count(" round ") == 6
    access = (out / "https" / "nginx-access.log").read_text()
    assert '"PUT /store/demo-lung-nodules/rounds/1/update-site-a.fdne HTTP' in access
    # nginx was stopped with the demo.
    pid = int((out / "https" / "nginx.pid").read_text()) if (out / "https" / "nginx.pid").exists() else 0
    if pid:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
