"""Mutation testing of the core with mutmut, in a tree laid out like the installed package.

mutmut copies the code it mutates into ``mutants/`` and puts that folder first on
``sys.path``, so that the tests import the mutated copy. The repository keeps ``lint/`` beside
``wd_guard/`` and installs it as ``wd_guard.lint`` (a setuptools ``package-dir`` line); a plain
copy of the two folders would leave ``wd_guard.lint`` resolving to the unmutated folder through
the editable install, and every linter mutant would survive. So this script lays out
``build/mutation/`` as the installed package (``wd_guard/`` with ``lint/`` inside it as
``wd_guard/lint/``), beside the tests and the files they read, and runs mutmut there. Mutant
names are import names: ``wd_guard.lint.rules.penalties.x_is_norm__mutmut_3``.

Only files whose content changed are copied, so mutmut's results for unchanged functions are
kept from one run to the next (it re-tests a function when its source changes).

    python scripts/mutate.py                      # every module in [tool.mutmut] only_mutate
    python scripts/mutate.py lint/rules/penalties.py wd_guard/classify.py
    python scripts/mutate.py --again lint/rules/penalties.py   # survivors and untested ones only
    python scripts/mutate.py --scores             # the score table of the last runs
    python scripts/mutate.py --survivors lint/rules/penalties.py
"""

from __future__ import annotations

import argparse
import filecmp
import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "mutation"
# Repository path -> path in the tree. Later entries are laid inside earlier ones.
LAYOUT: Tuple[Tuple[str, str], ...] = (
    ("wd_guard", "wd_guard"),
    ("lint", "wd_guard/lint"),
    ("tests", "tests"),
    ("docs", "docs"),
    ("examples", "examples"),
    ("scripts", "scripts"),
    ("benchmarks", "benchmarks"),
    ("README.md", "README.md"),
    ("LICENSE", "LICENSE"),
    ("MANIFEST.in", "MANIFEST.in"),
    ("Makefile", "Makefile"),
    ("pyproject.toml", "pyproject.toml"),
    ("constraints.txt", "constraints.txt"),
    (".pre-commit-hooks.yaml", ".pre-commit-hooks.yaml"),
)
_SKIPPED = ("__pycache__", ".pytest_cache", ".hypothesis", ".wd-lint-cache", "lightning_logs")
# mutmut's exit codes, grouped as the score counts them.
_KILLED = {1, 3, 24, -24, 36, 152, 255, 37}  # failed test, timeout, caught by the type check
_SURVIVED = {0}
_NO_TESTS = {5, 33}


def tree_path(repo_path: str) -> str:
    """Where a repository path (``lint/rules/sites.py``) lies in the tree."""
    for source, target in sorted(LAYOUT, key=lambda pair: -len(pair[0])):
        if repo_path == source or repo_path.startswith(source + "/"):
            return target + repo_path[len(source):]
    raise SystemExit(f"{repo_path}: not part of the mutation tree")


def _sync(source: Path, target: Path, inner: List[Path]) -> None:
    """Make ``target`` a copy of ``source``; a file is copied only when its content changed,
    and files that left ``source`` are removed (``inner`` folders belong to other entries)."""
    if source.is_file():
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return
    target.mkdir(parents=True, exist_ok=True)
    for entry in target.iterdir():
        if entry in inner or entry.name in _SKIPPED:
            continue
        if not (source / entry.name).exists():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for entry in source.iterdir():
        if entry.name not in _SKIPPED:
            _sync(entry, target / entry.name, inner)


def _prune(copy: Path, source: Path) -> None:
    """Remove from ``copy`` what ``source`` no longer has (mutmut copies the tests into
    ``mutants/`` without removing tests deleted since)."""
    for entry in list(copy.iterdir()):
        if entry.name in _SKIPPED or entry.name.endswith(".meta"):
            continue
        if not (source / entry.name).exists():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        elif entry.is_dir():
            _prune(entry, source / entry.name)


def lay_out() -> None:
    """Bring ``build/mutation/`` up to date with the working tree."""
    inner = [TREE / target for _, target in LAYOUT]
    for source, target in LAYOUT:
        if (ROOT / source).exists():
            _sync(ROOT / source, TREE / target, inner)
    for _, target in LAYOUT:
        if (TREE / "mutants" / target).is_dir() and (TREE / target).is_dir():
            _prune(TREE / "mutants" / target, TREE / target)


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def modules() -> List[str]:
    """The tree paths of every module mutmut mutates, sorted."""
    patterns = _config()["only_mutate"]
    found = {
        path.relative_to(TREE).as_posix()
        for path in (TREE / "wd_guard").rglob("*.py")
        if "mutants" not in path.parts
    }
    return sorted(path for path in found if any(fnmatch.fnmatch(path, p) for p in patterns))


def _module_name(tree_module: str) -> str:
    return tree_module[: -len(".py")].replace("/", ".")


def _results(tree_module: str) -> Dict[str, object]:
    meta = TREE / "mutants" / (tree_module + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text())["exit_code_by_key"]


def scores() -> Iterator[Tuple[str, int, int, int, int]]:
    """(module, mutants, killed, survived, not run or without tests) per module."""
    for module in modules():
        codes = list(_results(module).values())
        killed = sum(code in _KILLED for code in codes)
        survived = sum(code in _SURVIVED for code in codes)
        yield module, len(codes), killed, survived, len(codes) - killed - survived


def print_scores() -> None:
    print(f"{'module':45} {'mutants':>8} {'killed':>7} {'survived':>9} {'other':>6} {'score':>6}")
    for module, total, killed, survived, other in scores():
        tried = killed + survived
        score = f"{100 * killed / tried:.1f}%" if tried else "-"
        print(f"{module:45} {total:8} {killed:7} {survived:9} {other:6} {score:>6}")


def print_survivors(tree_modules: List[str]) -> None:
    for module in tree_modules:
        for key, code in sorted(_results(module).items()):
            if code in _SURVIVED or code in _NO_TESTS:
                print(key, "survived" if code in _SURVIVED else "no tests")


def _unsettled(tree_module: str) -> List[str]:
    """Mutants that survived the last run, had no test, or were not tested yet."""
    return sorted(key for key, code in _results(tree_module).items() if code is None or code in _SURVIVED | _NO_TESTS)


def run(tree_modules: List[str], processes: int, again: bool = False) -> int:
    """Run mutmut on each module in turn (its mutants, against the tests that cover them);
    with ``again``, only those that survived the last run or were not tested yet."""
    mutmut = [sys.executable, "-m", "mutmut", "run", "--max-children", str(processes)]
    status = 0
    for module in tree_modules:
        names = _unsettled(module) if again else [_module_name(module) + ".*"]
        print(f"== {module}: {f'{len(names)} mutants not killed yet' if again else 'every mutant'}", flush=True)
        if names:
            code = subprocess.call([*mutmut, *names], cwd=TREE)
            if code:
                # After collecting the stats, mutmut's clean run of the tests can fail in the
                # same process (tests that run twice in one interpreter); with the stats
                # saved, a fresh process passes it.
                print("== again, in a fresh process", flush=True)
                code = subprocess.call([*mutmut, *names], cwd=TREE)
            status |= code
    return status


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="repository paths of modules to mutate (default: all configured)")
    parser.add_argument("-j", "--processes", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--scores", action="store_true", help="print the score per module and stop")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants and stop")
    parser.add_argument(
        "--again", action="store_true", help="test only the mutants that survived the last run or were not tested yet"
    )
    args = parser.parse_args(argv)
    lay_out()
    chosen = [tree_path(m) for m in args.modules] or modules()
    unknown = sorted(set(chosen) - set(modules()))
    if unknown:
        raise SystemExit(f"not configured for mutation in [tool.mutmut] only_mutate: {', '.join(unknown)}")
    if args.survivors:
        print_survivors(chosen)
        return 0
    if not args.scores:
        status = run(chosen, args.processes, args.again)
        if status:
            return status
    print_scores()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
