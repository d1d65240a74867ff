"""The package and the linter import without torch or Lightning; runtime names load lazily."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("torch", "lightning", "pytorch_lightning", "torchmetrics")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)


def test_import_loads_no_framework():
    result = _run(
        f"""
        import sys
        import wd_guard, wd_guard.lint, wd_guard.lint.command.cli, wd_guard.catalogue, wd_guard.optimizers
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        print(heavy)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_extra_names_the_extra():
    # Simulate an install without the extra: torch and lightning cannot be imported.
    result = _run(
        """
        import sys
        for name in ("torch", "lightning", "pytorch_lightning", "torchmetrics"):
            sys.modules[name] = None
        try:
            from wd_guard import WeightDecayGuard
        except ImportError as exc:
            print(exc)
        """
    )
    assert "wd-guard[lightning]" in result.stdout, result.stdout + result.stderr


def test_lazy_names_resolve():
    result = _run(
        """
        import wd_guard
        from wd_guard import WeightDecayGuard, audit, param_groups, weight_stats, Finding
        print(WeightDecayGuard.__module__, audit.__module__, param_groups.__module__, weight_stats.__module__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wd_guard.callback", "wd_guard.auditing", "wd_guard.groups", "wd_guard.stats"]


def test_every_linter_module_imports_on_its_own():
    # Import order must not matter: a module that only imports after another has been loaded
    # hides a cycle that a user (or a test run alone) meets.
    import pkgutil

    import wd_guard.lint

    names = sorted(m.name for m in pkgutil.walk_packages(wd_guard.lint.__path__, "wd_guard.lint.") if not m.name.endswith("__main__"))
    assert len(names) > 30
    failed = []
    for name in names:
        result = _run(f"import {name}")
        if result.returncode != 0:
            failed.append(f"{name}: {result.stderr.strip().splitlines()[-1]}")
    assert failed == []
