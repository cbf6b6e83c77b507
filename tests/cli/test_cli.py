"""The fednode command-line tool: subcommand framework and `version`."""
import os
import subprocess

import pytest

CLI = os.environ.get("FEDNODE_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="FEDNODE_CLI not set")


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def test_version():
    r = run("version")
    assert r.returncode == 0
    assert r.stdout.startswith("fednode 1.")
    assert "libfednode 1." in r.stdout
    assert r.stderr == ""


def test_no_command_is_usage_error():
    r = run()
    assert r.returncode == 2
    assert "usage: fednode" in r.stderr


def test_unknown_command_and_option():
    r = run("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = run("--frob", "version")
    assert r.returncode == 2 and "unknown option '--frob'" in r.stderr


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("help",)])
def test_top_level_help_lists_every_command(args):
    r = run(*args)
    assert r.returncode == 0
    assert "Commands:" in r.stdout and "version" in r.stdout


@pytest.mark.parametrize("args", [("version", "--help"), ("help", "version"), ("version", "-h")])
def test_subcommand_help(args):
    r = run(*args)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: fednode version")


def test_every_listed_command_has_help():
    listing = run("--help").stdout.split("Commands:")[1].split("\n\n")[0]
    names = [line.split()[0] for line in listing.strip().splitlines()]
    assert names
    for name in names:
        r = run(name, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: fednode {name}"), name


def test_verbose_shows_library_log():
    r = run("-v", "version")
    assert r.returncode == 0
    assert "[core] libfednode" in r.stderr and "initialised" in r.stderr


def test_extra_argument_refused():
    r = run("version", "extra")
    assert r.returncode == 2 and "unexpected argument" in r.stderr
