"""``python -m wd_guard.lint``: the same as the ``wd-lint`` command."""

from wd_guard.lint.entry import command

command()
