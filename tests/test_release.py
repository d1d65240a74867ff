"""Release metadata: licence, URLs, classifiers and what the sdist holds agree with the project."""

from __future__ import annotations

import sys
from pathlib import Path

from wd_guard.catalogue import REPOSITORY_URL

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_file_and_spdx_expression_agree():
    assert PROJECT["project"]["license"] == "MIT" and PROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    requires = PROJECT["build-system"]["requires"]
    assert any(item.startswith("setuptools>=") and int(item.split(">=")[1].split(".")[0]) >= 77 for item in requires)
    assert not any(c.startswith("License ::") for c in PROJECT["project"]["classifiers"])  # SPDX forbids both


def test_classifiers_say_what_is_true():
    classifiers = PROJECT["project"]["classifiers"]
    assert "Framework :: Pytest" not in classifiers  # no pytest plugin is shipped
    assert "Typing :: Typed" in classifiers and (ROOT / "wd_guard" / "py.typed").exists()
    low = int(PROJECT["project"]["requires-python"].split(">=3.")[1])
    versions = sorted(int(c.rsplit(".", 1)[1]) for c in classifiers if c.startswith("Programming Language :: Python :: 3."))
    assert versions[0] == low and versions == list(range(low, versions[-1] + 1))


def test_project_urls_name_the_repository_the_rule_pages_live_in():
    urls = PROJECT["project"]["urls"]
    assert all(url.startswith(REPOSITORY_URL) for url in urls.values())


def test_sdist_manifest_holds_the_whole_test_suite_and_what_it_reads():
    lines = [line.split() for line in (ROOT / "MANIFEST.in").read_text().splitlines() if line and not line.startswith("#")]
    for folder in ("tests", "docs", "examples", "scripts", "benchmarks"):
        assert ["graft", folder] in lines
    included = [name for line in lines if line[0] == "include" for name in line[1:]]
    for name in ("LICENSE", "constraints.txt", ".pre-commit-hooks.yaml", "Makefile"):
        assert name in included and (ROOT / name).exists()
