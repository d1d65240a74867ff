"""Entry points: the ``wd-lint`` command line and the flake8 plugin."""
