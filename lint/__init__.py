"""wd-lint: the static half of wd-guard. Reads source with libcst; never imports torch.

The path of a file through the linter, one folder a stage (see ``api`` for the whole run):

- ``files/``: which files to read and the settings that apply to them;
- ``intake/``: reading and decoding, and the pre-filter on the raw bytes;
- ``analysis/``: one parse and one pass of every rule, in isolated worker processes, and the
  cache of outcomes;
- ``rules/``: one class per catalogue code, with its examples (the room for a new rule);
- ``fixes/``: the rules' fixes, turned into text edits and written safely;
- ``output/``: ``# noqa`` and every output format;
- ``command/``: the entry points, the ``wd-lint`` command and the flake8 plugin.
"""
