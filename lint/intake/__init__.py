"""Intake: a file's bytes read and decoded, and the pre-filter that spares most files a parse."""
