"""Lint a corpus of public training repositories and write every finding as JSON.

The corpus is one folder holding a checkout of each repository, named after the repository
(``<corpus>/nanoGPT`` for ``karpathy/nanoGPT``). The list of repositories is a text file with
one ``owner/name commit`` line each (``#`` starts a comment); the commits say which versions
the verdicts in ``docs/real-code.md`` were read on. Each repository is linted twice with the
configuration files of the repositories ignored: with the default rules, and with the opt-in
WD204 added. Python files and notebooks are found by the folder walk; every YAML file of the
repository is named on the command line, since a folder walk reads YAML only when a project
includes it.

    python scripts/corpus_verdicts.py CORPUS REPOS.txt -o findings.json

Checking a repository out at its commit is left to the reader (``git archive COMMIT``); the
script reports a folder that is missing and goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

RUNS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (("default", ()), ("wd204", ("--extend-select", "WD204")))
YAML_SUFFIXES = (".yaml", ".yml")
SKIP = frozenset({".git", "node_modules", ".ipynb_checkpoints", "__pycache__"})


def read_repos(path: Path) -> List[Tuple[str, str]]:
    """``(owner/name, commit)`` pairs from a list file."""
    pairs = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            repo, commit = line.split()
            pairs.append((repo, commit))
    return pairs


def yaml_files(folder: Path) -> List[str]:
    """Every YAML file under ``folder``, relative to it, in name order."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        found.extend(os.path.relpath(os.path.join(top, name), folder) for name in files if name.endswith(YAML_SUFFIXES))
    return sorted(found)


def lint(folder: Path, extra: Tuple[str, ...]) -> Dict[str, Any]:
    """wd-lint's JSON findings and its problems for one repository folder."""
    command = [sys.executable, "-m", "wd_guard.lint", "--isolated", "--no-cache", "--format", "json", *extra, ".", *yaml_files(folder)]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=3600)
    if result.returncode not in (0, 1, 2):
        raise RuntimeError(f"wd-lint failed on {folder} with status {result.returncode}: {result.stderr[-2000:]}")
    problems = [line for line in result.stderr.splitlines() if ": error: " in line]
    return {"status": result.returncode, "findings": json.loads(result.stdout or "[]"), "problems": problems}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder holding one checkout per repository")
    parser.add_argument("repos", type=Path, help="file of 'owner/name commit' lines")
    parser.add_argument("-o", "--output", type=Path, default=Path("corpus-findings.json"))
    args = parser.parse_args(argv)
    results = []
    for repo, commit in read_repos(args.repos):
        folder = args.corpus / repo.split("/", 1)[1]
        if not folder.is_dir():
            print(f"{repo}: no folder {folder}; skipped", file=sys.stderr)
            continue
        entry: Dict[str, Any] = {"repo": repo, "commit": commit}
        for name, extra in RUNS:
            entry[name] = lint(folder, extra)
        counts = {name: len(entry[name]["findings"]) for name, _ in RUNS}
        print(f"{repo}: {counts}, {len(entry['default']['problems'])} files not linted", file=sys.stderr)
        results.append(entry)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
