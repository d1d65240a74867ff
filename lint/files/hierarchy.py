"""Which configuration applies to each file: the closest one in its folder or above.

``wd-lint ../proj`` run from elsewhere, and pre-commit in a monorepo whose packages each have
their own ``[tool.wd-lint]``, lint every file with the settings of its own project. A file with
no configuration above it gets the fallback (the configuration found from the current folder,
or the defaults). ``--config FILE`` and ``--isolated`` fix one configuration for every file.
Command-line options apply over whichever configuration a file has (see ``Overrides``).
Lookups are cached per folder, so a tree costs one check per folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, FrozenSet, Generic, Optional, Tuple, TypeVar

from wd_guard.lint.files.discover import SKIP_DIRS, is_excluded
from wd_guard.lint.files.settings import Config, Layer, config_in, load_config, resolve_codes

T = TypeVar("T")


@dataclass(frozen=True)
class Overrides:
    """What the command line sets over every configuration; None: the configuration decides."""

    cwd: Path
    layer: Layer = field(default_factory=Layer)
    exclude: Optional[Tuple[str, ...]] = None  # --exclude: replaces the configuration's and the defaults
    extend_exclude: Tuple[str, ...] = ()  # --extend-exclude: added
    respect_gitignore: Optional[bool] = None
    max_file_size: Optional[int] = None
    max_file_lines: Optional[int] = None
    timeout: Optional[float] = None


@dataclass(frozen=True)
class Effective:
    """The settings one configuration gives its files once the command line is applied."""

    config: Config
    codes: FrozenSet[str]
    exclude: Tuple[str, ...]  # anchored at config.root
    cli_exclude: Tuple[str, ...]  # anchored at the current folder
    skip_dirs: FrozenSet[str]  # default folder names skipped in walks (empty once replaced)
    max_file_size: int
    max_file_lines: int
    timeout: float
    respect_gitignore: bool

    @classmethod
    def of(cls, config: Config, cli: Overrides) -> "Effective":
        replaced = cli.exclude is not None or config.exclude is not None
        own = () if cli.exclude is not None else (config.exclude or ())
        return cls(
            config=config,
            codes=resolve_codes([config.layer, cli.layer]),
            exclude=tuple(own) + config.extend_exclude,
            cli_exclude=(cli.exclude or ()) + cli.extend_exclude,
            skip_dirs=frozenset() if replaced else SKIP_DIRS,
            max_file_size=cli.max_file_size if cli.max_file_size is not None else config.max_file_size,
            max_file_lines=cli.max_file_lines if cli.max_file_lines is not None else config.max_file_lines,
            timeout=cli.timeout if cli.timeout is not None else config.timeout,
            respect_gitignore=cli.respect_gitignore if cli.respect_gitignore is not None else config.respect_gitignore,
        )

    def excluded(self, path: str, walked: bool, cwd: Path) -> bool:
        """Whether ``path`` is skipped: a default folder name met in a walk, or a pattern."""
        if walked and os.path.basename(os.path.normpath(path)) in self.skip_dirs:
            return True
        return is_excluded(path, self.exclude, self.config.root) or is_excluded(path, self.cli_exclude, cwd)


class Hierarchy(Generic[T]):
    """The configuration of each file, and what ``build`` makes of it (cached per config)."""

    def __init__(self, fallback: Config, build: Callable[[Config], T], fixed: bool = False) -> None:
        self.fallback = fallback
        self.fixed = fixed  # --config or --isolated: the fallback for every file
        self._build = build
        self._folders: Dict[str, Config] = {}
        self._built: Dict[Optional[Path], T] = {}

    @classmethod
    def discover(cls, build: Callable[[Config], T], config: Optional[Path] = None, isolated: bool = False) -> "Hierarchy[T]":
        """The hierarchy for a run: ``--config FILE`` or ``--isolated`` fix one configuration,
        else each file finds its own and the current folder's is the fallback."""
        cwd = Path.cwd().resolve()
        if isolated:
            return cls(Config(root=cwd), build, fixed=True)
        if config is not None:
            return cls(load_config(config), build, fixed=True)
        return cls(load_config(start=cwd), build)

    def config_for(self, path: str) -> Config:
        """The closest configuration above ``path`` (a file or a folder: its parent decides)."""
        if self.fixed:
            return self.fallback
        folder = os.path.dirname(os.path.abspath(path))
        chain = []
        found: Optional[Config] = None
        while True:
            known = self._folders.get(folder)
            if known is not None:
                found = known
                break
            chain.append(folder)
            candidate = config_in(Path(folder))
            if candidate is not None:
                found = load_config(candidate)
                break
            parent = os.path.dirname(folder)
            if parent == folder:
                found = self.fallback
                break
            folder = parent
        for visited in chain:
            self._folders[visited] = found
        return found

    def for_path(self, path: str) -> T:
        """What ``build`` made of the configuration of ``path``."""
        return self.built(self.config_for(path))

    def built(self, config: Config) -> T:
        key = config.path
        if key not in self._built:
            self._built[key] = self._build(config)
        return self._built[key]
