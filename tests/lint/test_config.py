"""``[tool.wd-lint]``: found in the nearest pyproject.toml, validated, and layered with the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from wd_guard.catalogue import iter_rules
from wd_guard.lint.files.settings import (
    DEFAULT_MAX_FILE_SIZE,
    ConfigError,
    Layer,
    check_selectors,
    default_codes,
    expand,
    find_config_file,
    load_config,
    parse_size,
    resolve_codes,
)

STATIC = {rule.code for rule in iter_rules("static")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_nearest_pyproject_with_the_table_wins(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.wd-lint]\nignore = ["WD302"]\n')
    write(tmp_path / "pkg" / "pyproject.toml", "[project]\nname = 'pkg'\n")  # no table: skipped
    deep = tmp_path / "pkg" / "src" / "deeper"
    deep.mkdir(parents=True)
    assert find_config_file(deep) == tmp_path / "pyproject.toml"
    config = load_config(start=deep)
    assert config.root == tmp_path.resolve()
    assert config.layer.ignore == ("WD302",)


def test_no_config_means_defaults(tmp_path):
    config = load_config(start=tmp_path)
    assert config.path is None and config.layer == Layer()
    assert config.max_file_size == DEFAULT_MAX_FILE_SIZE
    assert resolve_codes([config.layer]) == default_codes()


def test_every_key_is_read(tmp_path):
    path = write(
        tmp_path / "pyproject.toml",
        """
[tool.wd-lint]
select = ["wd1", "WD210"]
extend-select = ["WD204"]
ignore = ["WD302"]
exclude = ["generated/", "*_pb2.py"]
per-file-ignores = { "tests/*" = ["WD210"], "scripts/old.py" = ["ALL"] }
max-file-size = "2MiB"
timeout = 30
""",
    )
    config = load_config(path)
    assert config.layer == Layer(select=("WD1", "WD210"), extend_select=("WD204",), ignore=("WD302",))
    assert config.exclude == ("generated/", "*_pb2.py")
    assert config.per_file_ignores == (("tests/*", ("WD210",)), ("scripts/old.py", ("ALL",)))
    assert config.max_file_size == 2 * 1024 * 1024
    assert config.timeout == 30.0


@pytest.mark.parametrize(
    "body, expected",
    [
        ('select = "WD101"', "select: expected a list of rule codes, got str 'WD101'"),
        ('select = ["XY1"]', "select: 'XY1' matches no rule code"),
        ('ignore = ["WD9"]', "ignore: 'WD9' matches no rule code"),
        ("extend-select = [101]", "extend-select: expected rule codes as strings, got int 101"),
        ('select = ["__import__(\'os\')"]', "matches no rule code"),
        ('per_file_ignores = {}', "unknown key 'per_file_ignores'; did you mean 'per-file-ignores'?"),
        ('colour = "red"', "unknown key 'colour' (known keys:"),
        ('per-file-ignores = ["tests/*"]', "per-file-ignores: expected a table of pattern = [codes]"),
        ('per-file-ignores = { "tests/*" = "WD210" }', "per-file-ignores 'tests/*': expected a list of rule codes"),
        ('per-file-ignores = { "tests/*" = ["NOPE"] }', "'NOPE' matches no rule code"),
        ('exclude = "build"', "exclude: expected a list of glob patterns"),
        ('exclude = [""]', "exclude: expected non-empty glob patterns"),
        ('exclude = ["a\\u0000b"]', "exclude: expected non-empty glob patterns"),
        ("max-file-size = -1", "max-file-size: expected a positive size"),
        ("max-file-size = true", "max-file-size: expected a positive size"),
        ('max-file-size = "5 parsecs"', "max-file-size: expected a positive size"),
        ("timeout = 0", "timeout: expected a positive number of seconds"),
        ('timeout = "soon"', "timeout: expected a positive number of seconds"),
        ("timeout = inf", "timeout: expected a positive number of seconds"),
    ],
)
def test_bad_values_are_named_with_file_and_key(tmp_path, body, expected):
    path = write(tmp_path / "pyproject.toml", f"[tool.wd-lint]\n{body}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "[tool.wd-lint]" in message
    assert expected in message


def test_table_that_is_not_a_table(tmp_path):
    path = write(tmp_path / "pyproject.toml", '[tool]\nwd-lint = "strict"\n')
    with pytest.raises(ConfigError, match="expected a table, got str"):
        load_config(path)


def test_invalid_toml_is_a_config_error(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.wd-lint\nselect = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(start=tmp_path)


def test_undecodable_toml_is_a_config_error(tmp_path):
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.wd-lint]\nselect = ['\xff']\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(start=tmp_path)


def test_selectors_are_upper_cased_and_checked():
    assert check_selectors(["wd101", " WD2 ", "all"], "--select") == ("WD101", "WD2", "ALL")
    with pytest.raises(ConfigError, match="--select: 'W D' matches no rule code"):
        check_selectors(["W D"], "--select")


def test_expand_prefixes_and_all():
    assert expand("ALL") == STATIC
    assert expand("WD2") == {code for code in STATIC if code.startswith("WD2")}
    assert expand("WD201") == frozenset()  # a runtime-only code: valid, but nothing static to run
    assert expand("WD1") == {"WD101"}


def test_layers_select_replaces_extend_adds_ignore_removes():
    assert resolve_codes([]) == default_codes()
    assert "WD204" not in default_codes()
    assert resolve_codes([Layer(extend_select=("WD204",))]) == default_codes() | {"WD204"}
    assert resolve_codes([Layer(select=("WD2",))]) == {"WD204", "WD210"}
    assert resolve_codes([Layer(select=("ALL",), ignore=("WD4",))]) == STATIC - {"WD401", "WD402"}


def test_command_line_layer_overrides_the_config_layer():
    config = Layer(select=("WD1",), ignore=("WD2",))
    assert resolve_codes([config, Layer(extend_select=("WD204",))]) == {"WD101", "WD204"}
    assert resolve_codes([config, Layer(select=("WD302",))]) == {"WD302"}
    assert resolve_codes([config, Layer(ignore=("WD101",))]) == frozenset()


@pytest.mark.parametrize(
    "value, expected",
    [(1234, 1234), ("1234", 1234), ("5MB", 5_000_000), ("5mib", 5 * 1024**2), ("2 KB", 2000), ("1GiB", 1024**3)],
)
def test_sizes(value, expected):
    assert parse_size(value, "max-file-size") == expected


@pytest.mark.parametrize("value", [0, "0", -5, "5XB", "", None, 1.5, False])
def test_bad_sizes(value):
    with pytest.raises(ConfigError, match="expected a positive size"):
        parse_size(value, "max-file-size")
