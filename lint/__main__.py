"""``python -m wd_guard.lint``: the same as the ``wd-lint`` command."""

from wd_guard.lint.command.cli import command

command()
