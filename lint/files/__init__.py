"""Finding files and settings: which files wd-lint reads, and the settings that apply."""
