"""What the linter reports: one Diagnostic per finding, located in the source it read."""

from __future__ import annotations

from dataclasses import dataclass

from wd_guard.catalogue import Severity, get_rule


@dataclass(frozen=True)
class Diagnostic:
    """A rule's finding at a place in a file. Lines and columns are 1-based."""

    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    path: str = ""

    @property
    def severity(self) -> Severity:
        """The catalogue's default severity for this code."""
        return get_rule(self.code).severity

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code)
