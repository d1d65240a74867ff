"""Parsing and analysis: one libcst parse and one pass of every rule, in isolated workers."""
