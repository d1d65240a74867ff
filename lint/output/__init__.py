"""Output: which findings ``# noqa`` silences, and every format wd-lint prints."""
