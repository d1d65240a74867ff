"""On real code, the fast path (pre-filter, cache, worker processes) finds exactly what a full
analysis of every file finds.

The corpus is real: the installed ``lightning``, ``torch.optim``, ``torch.nn`` and ``transformers`` sources,
sampled deterministically (every file that has the rules' words, and a fixed share of the
others, below a size cap that keeps the full analysis to seconds), and this repository's own
examples and fixtures.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from wd_guard.lint.files.settings import static_codes
from wd_guard.lint.analysis import parse as analysis
from wd_guard.lint.analysis.engine import might_matter
from wd_guard.lint.api import Options, lint_files
from wd_guard.lint.intake.source import decode_source
from wd_guard.lint.output.noqa import apply_noqa

ROOT = Path(__file__).resolve().parents[2]
ALL = frozenset(static_codes())
SOURCES = (("lightning", ""), ("torch", "optim"), ("torch", "nn"), ("transformers", ""))
WITH_WORDS_MAX_BYTES = 100_000
OTHERS_MAX_BYTES = 20_000
OTHERS_SHARE = 2  # every other file without the words
Found = Dict[str, List[Tuple]]


def installed(package: str, sub: str) -> List[Path]:
    spec = find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return []
    base = Path(next(iter(spec.submodule_search_locations))) / sub
    top = base.glob("*.py") if package == "transformers" else base.rglob("*.py")  # transformers: not its 500 models
    return sorted(path for path in top if "__pycache__" not in path.parts)


def sample() -> List[Path]:
    chosen: List[Path] = []
    others = 0
    for package, sub in SOURCES:
        for path in installed(package, sub):
            size = path.stat().st_size
            if might_matter(path.read_bytes(), select=ALL):
                chosen.extend([path] if size <= WITH_WORDS_MAX_BYTES else [])
            elif size <= OTHERS_MAX_BYTES:
                others += 1
                chosen.extend([path] if others % OTHERS_SHARE == 0 else [])
    own = sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "tests" / "lint" / "fixtures").rglob("*.py"))
    return chosen + own


def full_analysis(paths: List[Path]) -> Found:
    """libcst's parse of every file and every rule, with no pre-filter at all."""
    found: Found = {}
    for path in paths:
        text = decode_source(str(path), path.read_bytes())
        try:
            ctx, reports = analysis.parse_and_check(text, str(path), select=ALL)
        except Exception:  # noqa: BLE001 - a file libcst cannot read has no findings to compare
            continue
        diagnostics = [diagnostic for diagnostic, _ in analysis.locate(ctx, reports)]
        found[str(path)] = sorted(astuple(d) for d in apply_noqa(diagnostics, text))
    return {path: rows for path, rows in found.items() if rows}


def astuple(diagnostic) -> Tuple:
    return (diagnostic.code, diagnostic.line, diagnostic.column, diagnostic.end_line, diagnostic.end_column, diagnostic.message, diagnostic.fix)


def fast_path(paths: List[Path], **options) -> Tuple[Found, int]:
    report = lint_files([str(path) for path in paths], Options(codes=ALL, root=ROOT, **options))
    found: Found = {}
    for diagnostic in report.diagnostics:
        found.setdefault(diagnostic.path, []).append(astuple(replace(diagnostic, path="")))
    return {path: sorted(rows) for path, rows in found.items()}, report.analysed


@pytest.fixture(scope="module")
def corpus():
    paths = sample()
    if len(paths) < 200:
        pytest.skip("lightning, torch and transformers are not installed")
    return paths, full_analysis(paths)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_fast_path_equals_full_analysis_on_real_code(corpus, tmp_path):
    paths, expected = corpus
    assert len({row[0] for rows in expected.values() for row in rows}) >= 4  # the comparison is not about nothing
    cold, analysed = fast_path(paths, processes=2, cache_dir=tmp_path / "cache")
    assert cold == expected
    assert analysed < len(paths) / 2  # the pre-filter did its work
    warm, _ = fast_path(paths, processes=2, cache_dir=tmp_path / "cache")
    assert warm == expected


@pytest.mark.slow
def test_fast_path_in_process_without_cache_equals_full_analysis(corpus):
    paths, expected = corpus
    assert fast_path(paths, processes=0)[0] == expected
