"""wd-lint: the static half of wd-guard. Reads source with libcst; never imports torch."""
