"""What every static rule is made of: its catalogue code, its vocabulary and its examples.

A rule reads one parsed file through a :class:`FileContext` (the nodes it asked for, the
file's name table, analyses shared with other rules) and yields :class:`Report` objects; the
engine turns them into located :class:`~wd_guard.lint.diagnostic.Diagnostic` objects with the
catalogue's message. ``VALID`` and ``INVALID`` snippets document the rule and are run as tests.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import libcst as cst

from wd_guard.catalogue import Rule, get_rule
from wd_guard.lint.analysis.names import NameTable

T = TypeVar("T")


@dataclass(frozen=True)
class Invalid:
    """A snippet the rule must report exactly once.

    ``line`` is the 1-based line of the report when it matters; ``fixed`` is the source the
    rule's fix must produce, or None when the rule offers no fix for this snippet.
    """

    code: str
    line: Optional[int] = None
    fixed: Optional[str] = None


@dataclass(frozen=True)
class Replace:
    """Replace the code of ``node`` by ``content``: text, or a new node whose code is
    generated in the place of the old one (with that place's indentation)."""

    node: cst.CSTNode
    content: Union[str, cst.CSTNode]


@dataclass(frozen=True)
class InsertLines:
    """Insert whole lines (``text`` ends with a newline) after the lines of ``anchor``, or
    before them when ``before`` is set."""

    anchor: cst.CSTNode
    text: str
    before: bool = False


@dataclass(frozen=True)
class DeleteLines:
    """Delete the lines of ``node``, when they hold nothing else (otherwise leave them)."""

    node: cst.CSTNode


Change = Union[Replace, InsertLines, DeleteLines]


@dataclass(frozen=True)
class FixPlan:
    """A fix in terms of nodes; the engine turns it into text edits once positions are known."""

    title: str
    changes: Tuple[Change, ...]


@dataclass(frozen=True)
class AtLine:
    """Message text that names a place in the file: ``{line}`` in ``text`` becomes the line
    of ``node`` once the engine knows where nodes are."""

    text: str
    node: cst.CSTNode

    def render(self, line: int) -> str:
        return self.text.replace("{line}", str(line))


@dataclass(frozen=True)
class Report:
    """A rule's finding before the engine locates it: the node, the message's values and a
    builder for the fix, if the rule offers one."""

    node: cst.CSTNode
    values: Mapping[str, object] = field(default_factory=dict)
    fix: Optional[Callable[[], Optional[FixPlan]]] = None


class FileContext:
    """One parsed file as the rules see it."""

    def __init__(self, module: cst.Module, path: str, names: NameTable, nodes: Dict[type, List[cst.CSTNode]]) -> None:
        self.module = module
        self.path = path
        self.names = names
        self._nodes = nodes
        self._shared: Dict[Callable[..., Any], Any] = {}
        self.text: Optional[str] = None  # the source text, when the engine has it
        self.statement_lines: Optional[List[int]] = None  # first line of each top-level statement

    def nodes(self, node_type: Type[cst.CSTNode]) -> Sequence[cst.CSTNode]:
        """Every node of ``node_type`` in the file, in source order (the type must be one a
        rule listed in ``NODES``)."""
        return self._nodes.get(node_type, ())

    def code(self, node: cst.CSTNode) -> str:
        """The source text of ``node``."""
        return self.module.code_for_node(node)

    def shared(self, analysis: Callable[["FileContext"], T]) -> T:
        """``analysis(self)``, computed once per file however many rules ask for it."""
        if analysis not in self._shared:
            self._shared[analysis] = analysis(self)
        return self._shared[analysis]


class LintRule(abc.ABC):
    """Base of every static rule.

    ``NODES`` names the node types the rule reads (collected in the engine's single walk);
    ``VOCABULARY`` is what the raw bytes of a file must contain for the rule to possibly fire
    (every group must be matched by one of its words): the rule's entry in
    ``vocabulary.BY_CODE``, which the pre-filter reads without loading any rule.
    """

    CODE: ClassVar[str]
    NODES: ClassVar[Tuple[Type[cst.CSTNode], ...]] = ()
    VOCABULARY: ClassVar[Tuple[Tuple[bytes, ...], ...]] = ()
    VALID: ClassVar[Tuple[str, ...]] = ()
    INVALID: ClassVar[Tuple[Invalid, ...]] = ()

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx

    @classmethod
    def entry(cls) -> Rule:
        """The rule's catalogue entry."""
        return get_rule(cls.CODE)

    @abc.abstractmethod
    def check(self) -> Iterator[Report]:
        """Yield a report for each finding in ``self.ctx``."""
