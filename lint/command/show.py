"""``wd-lint --show-settings PATH``: the settings that apply to one file, and where they come from."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List

from wd_guard.lint.api import Options
from wd_guard.lint.files.hierarchy import Effective


def describe(path: str, options: Options, effective: Effective) -> str:
    """One ``key: value`` line per setting that applies to ``path`` (codes after its per-file
    ignores), headed by the configuration file they come from."""
    config = effective.config
    excluded = effective.excluded(path, False, Path.cwd().resolve())
    lines: List[str] = [
        f"Settings for: {path}",
        f"configuration: {config.path if config.path is not None else 'none (defaults)'}",
        f"root: {config.root}",
        f"codes: {_items(sorted(options.codes_for(path)))}",
        f"select: {_items(config.layer.select) if config.layer.select is not None else '(defaults)'}",
        f"extend-select: {_items(config.layer.extend_select)}",
        f"ignore: {_items(config.layer.ignore)}",
        f"per-file-ignores: {_items(f'{pattern} = {_items(codes)}' for pattern, codes in config.per_file_ignores)}",
        f"exclude: {_items(effective.exclude)}",
        f"command-line excludes: {_items(effective.cli_exclude)}",
        f"default excludes: {_items(sorted(effective.skip_dirs)) if effective.skip_dirs else '(replaced)'}",
        f"excluded: {'yes' if excluded else 'no'}",
        f"respect-gitignore: {'true' if effective.respect_gitignore else 'false'}",
        f"line-length: {options.line_length if options.line_length is not None else 'none'}",
        f"max-file-size: {effective.max_file_size}",
        f"timeout: {effective.timeout:g}",
    ]
    return "".join(line + "\n" for line in lines)


def _items(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(values) if values else "(none)"


__all__ = ["describe"]
