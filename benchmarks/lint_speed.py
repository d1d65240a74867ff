"""How fast ``wd-lint`` is, as ratios against parsing the same files and against other linters.

Copies a corpus of real files (by default from installed packages: Lightning, parts of torch,
the training loop of transformers; or the folders given) into a scratch folder, installs
wd-guard there from a wheel as pre-commit does (see ``install``), and times, as whole
processes (interpreter start and imports included), medians over runs taken in turn:

- a bare single-process ``libcst.parse_module`` loop over every file, and an ``ast.parse`` loop;
- ``wd-lint`` cold (empty cache) and warm (unchanged tree, cache filled);
- each peer that is installed: ruff (cold, ``--no-cache``), flake8, Fixit, TorchFix;
- one small file, the pre-commit case: without the rules' words, unchanged and changed,
  beside ``python -c "import libcst"``, the floor of any run that must parse;
- the peak memory (largest process) of a cold run over the corpus and over four copies of it.

Then prints one table of ratios with the targets. Peers are looked up in each ``--peer-bin``
folder, then on ``PATH``; those not installed are skipped. TorchFix and Fixit take minutes on
a large corpus: ``--peers ruff,flake8`` leaves them out.

    python benchmarks/lint_speed.py                     # or: make bench
    python benchmarks/lint_speed.py ~/src/my-repo --peer-bin ~/peers/bin --runs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Collection, Dict, List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus import DEFAULT_SOURCES, Corpus, build  # noqa: E402
from install import install  # noqa: E402
from wholeprocess import Command, measure  # noqa: E402

PEERS = ("ruff", "flake8", "fixit", "torchfix")
ROOT = Path(__file__).resolve().parent.parent
SMALL_FILE = ROOT / "examples" / "bad_optimizers.py"
LOOP = """
import sys
paths = open(sys.argv[1], encoding="utf-8").read().splitlines()
import {module}
failed = 0
for path in paths:
    with open(path, "rb") as handle:
        source = handle.read()
    try:
        {call}(source)
    except Exception:
        failed += 1
print(len(paths), failed)
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wd-lint-bench-") as scratch:
        work = Path(scratch)
        corpus = build(args.paths or DEFAULT_SOURCES, work / "corpus")
        if len(corpus.files) < 2:
            print("no Python files found in the given sources", file=sys.stderr)
            return 2
        _describe(corpus)
        peers = find_peers(args.peer_bin, args.peers)
        log = print if args.verbose else (lambda line: None)
        command = install(work / "install")
        user = _as_user(command)
        results = measure(user(corpus_commands(command, corpus, peers, args, work)), log)
        results.update(measure(user(small_file_commands(command, corpus, args, work)), log))
        if not args.no_memory:
            results.update(measure(user(memory_commands(command, args, work)), log))
        print_table(results, peers)
    return 0


def _as_user(wd_lint: List[str]):
    """Give the ``wd-lint`` commands a user's environment: Python writes bytecode, as it does
    unless told otherwise."""
    env = {"PYTHONDONTWRITEBYTECODE": ""}  # empty: not set

    def apply(commands: List[Command]) -> List[Command]:
        for command in commands:
            if list(command.argv[: len(wd_lint)]) == wd_lint:
                command.env = env
        return commands

    return apply


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="folders or globs of .py files (default: installed packages)")
    parser.add_argument("--peer-bin", action="append", default=[], metavar="DIR", help="where to look for peers first")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"which peers to run (default: {','.join(PEERS)})")
    parser.add_argument("--runs", type=int, default=5, help="runs of each fast command (default 5)")
    parser.add_argument("--slow-runs", type=int, default=1, help="runs of the parse loop, flake8, Fixit and TorchFix (default 1)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1x / 4x memory runs")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every run")
    return parser


def _describe(corpus: Corpus) -> None:
    from wd_guard.lint.files.settings import default_codes
    from wd_guard.lint.intake.vocabulary import might_matter

    codes = default_codes()
    sources = [path.read_bytes() for path in corpus.files]
    words = [source for source in sources if might_matter(source, select=codes)]
    in_code = sum(_in_code(source, codes) for source in words)
    print(f"corpus: {len(corpus.files)} files, {corpus.lines:,} lines, {corpus.size / 1e6:.1f} MB: {', '.join(corpus.labels)}")
    print(f"files with the rules' words: {len(words)} ({in_code} of them as names in the code, not only in comments or strings)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")


def _in_code(source: bytes, codes: Collection[str]) -> bool:
    from wd_guard.lint.analysis.parse import needs_libcst, python_tree

    try:
        tree = python_tree(source)
    except Exception:  # noqa: BLE001 - nested too deeply: libcst gets it
        return True
    return needs_libcst(tree, codes)


def find_peers(folders: Sequence[str], wanted: str) -> Dict[str, str]:
    """Each wanted peer's executable: the first in ``folders``, else on ``PATH``."""
    found = {}
    for name in (n.strip() for n in wanted.split(",") if n.strip()):
        for folder in [*folders, None]:
            path = shutil.which(name, path=folder) if folder else shutil.which(name)
            if path and not _is_ours(path):
                found[name] = path
                break
    return found


def _is_ours(path: str) -> bool:
    # This environment's flake8 runs wd-lint as a plugin: not a peer's figure.
    return Path(path).resolve().parent == Path(sys.executable).resolve().parent and Path(path).name == "flake8"


def _loop(module: str, call: str, listing: Path, label: str, runs: int) -> Command:
    code = LOOP.format(module=module, call=call)
    return Command(label, [sys.executable, "-c", code, str(listing)], runs=runs, warmup=0)


def _emptied(folder: Path):
    return lambda: shutil.rmtree(folder, ignore_errors=True)


def corpus_commands(wd_lint: List[str], corpus: Corpus, peers: Dict[str, str], args: argparse.Namespace, work: Path) -> List[Command]:
    listing = work / "files.txt"
    listing.write_text("\n".join(str(path) for path in corpus.files), encoding="utf-8")
    root = str(corpus.root)
    commands = [
        _loop("libcst", "libcst.parse_module", listing, "libcst parse loop", args.slow_runs),
        _loop("ast", "ast.parse", listing, "ast.parse loop", args.runs),
        Command("wd-lint cold", [*wd_lint, "--cache-dir", str(work / "cold"), root], args.runs, before=_emptied(work / "cold")),
        Command("wd-lint warm", [*wd_lint, "--cache-dir", str(work / "warm"), root], args.runs),
    ]
    peer_argv = {
        "ruff": ["check", "--no-cache", "--isolated", "--exit-zero", root],
        "flake8": ["--isolated", "--exit-zero", root],
        "fixit": ["lint", root],
        "torchfix": [root],
    }
    for name, path in peers.items():
        slow = name != "ruff"
        commands.append(Command(name, [path, *peer_argv[name]], args.slow_runs if slow else args.runs, warmup=0 if slow else 1))
    return commands


def small_file_commands(wd_lint: List[str], corpus: Corpus, args: argparse.Namespace, work: Path) -> List[Command]:
    from wd_guard.lint.intake.vocabulary import might_matter

    plain = min((p for p in corpus.files if not might_matter(p.read_bytes())), key=lambda p: abs(p.stat().st_size - SMALL_FILE.stat().st_size))
    cache = work / "small"
    base = [*wd_lint, "--cache-dir", str(cache)]
    python = str(Path(wd_lint[0]).with_name("python"))
    return [
        Command("python -c pass", [python, "-c", "pass"], args.runs),
        Command("python -c 'import libcst'", [python, "-c", "import libcst"], args.runs),
        Command("one file without the words", [*base, str(plain)], args.runs),
        Command("one file, unchanged", [*base, str(SMALL_FILE)], args.runs),
        Command("one file, changed", [*base, str(SMALL_FILE)], args.runs, before=lambda: _forget_entries(cache)),
    ]


def _forget_entries(cache: Path) -> None:
    """Remove the cache's entries: the file is new to it."""
    for path in cache.glob("*/*"):
        if re.fullmatch(r"[0-9a-f]{40}", path.name):
            path.unlink()


def memory_commands(wd_lint: List[str], args: argparse.Namespace, work: Path) -> List[Command]:
    sources = args.paths or DEFAULT_SOURCES
    many = build(sources, work / "corpus4x", copies=4)
    return [
        Command("memory 1x", [*wd_lint, "--no-cache", str(work / "corpus")], runs=1, warmup=0),
        Command(f"memory 4x ({len(many.files)} files)", [*wd_lint, "--no-cache", str(many.root)], runs=1, warmup=0),
    ]


def print_table(results: Dict[str, Command], peers: Dict[str, str]) -> None:
    parse = results["libcst parse loop"].wall
    print()
    print(f"{'command':<34} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'x parse':>8}  exit")
    for label, command in results.items():
        print(f"{label:<34} {command.wall:8.2f} {command.cpu:8.2f} {command.peak_mib:9.0f} {command.wall / parse:8.3f}  {command.exit_codes}")
    print()
    for name, path in peers.items():
        print(f"peer {name}: {path}")
    print()
    for line in target_lines(results):
        print(line)


def target_lines(results: Dict[str, Command]) -> List[str]:
    cold, warm = results["wd-lint cold"].wall, results["wd-lint warm"].wall
    lines = [_target("wd-lint cold / libcst parse loop", cold / results["libcst parse loop"].wall, "<= 0.25", lambda r: r <= 0.25)]
    if "torchfix" in results:
        lines.append(_target("TorchFix / wd-lint cold", results["torchfix"].wall / cold, ">= 30", lambda r: r >= 30))
    if "ruff" in results:
        lines.append(_target("wd-lint warm / ruff cold", warm / results["ruff"].wall, "<= 1", lambda r: r <= 1))
    floor = results["python -c 'import libcst'"].wall
    for label in ("one file without the words", "one file, unchanged"):
        lines.append(f"{label + ' (s)':<40} {results[label].wall:8.3f}   ({results[label].wall / floor:.2f}x import libcst)")
    extra = results["one file, changed"].wall - floor
    lines.append(_target("one file, changed - import libcst (s)", extra, "<= 0.2", lambda s: s <= 0.2))
    memory = [command for label, command in results.items() if label.startswith("memory")]
    if len(memory) == 2:
        lines.append(_target("peak memory 4x / 1x files", memory[1].peak_mib / memory[0].peak_mib, "about 1", lambda r: r < 1.25))
    return lines


def _target(label: str, value: float, target: str, met) -> str:
    return f"{label:<40} {value:8.3f}   target {target:<8} {'met' if met(value) else 'NOT MET'}"


if __name__ == "__main__":
    sys.exit(main())
