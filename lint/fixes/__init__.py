"""Fixes: the rules' rewrites, turned into text edits and written without ever losing data."""
