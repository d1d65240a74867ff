"""The table of compiled dataclass methods that halves the workers' import of libcst."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wd_guard.lint import compiled

# Every method dataclasses generates for libcst's node classes, as the interpreter sees it.
SIGNATURES = textwrap.dedent(
    """\
    import dataclasses, inspect, json, sys
    from wd_guard.lint.compiled import reused

    def methods():
        import libcst
        out = {}
        for module in [m for n, m in sorted(sys.modules.items()) if n.startswith("libcst")]:
            for name, cls in sorted(vars(module).items()):
                if not (inspect.isclass(cls) and dataclasses.is_dataclass(cls)):
                    continue
                for attr in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
                    fn = cls.__dict__.get(attr)
                    code = getattr(fn, "__code__", None)
                    if code is not None:
                        out[f"{module.__name__}.{name}.{attr}"] = [
                            code.co_code.hex(), code.co_filename, list(code.co_varnames), list(code.co_names),
                            repr(code.co_consts), repr(fn.__annotations__), repr(fn.__defaults__),
                            repr(fn.__kwdefaults__), fn.__globals__ is vars(sys.modules[cls.__module__]),
                        ]
        return out

    if sys.argv[1] == "plain":
        result, counts = methods(), None
    else:
        with reused(sys.argv[2]) as counts:
            result = methods()
        assert "exec" not in vars(dataclasses), "the lookup outlived its block"
    import libcst
    module = libcst.parse_module("x = torch.optim.Adam(params, weight_decay=1e-2)\\n")
    assert module.code.endswith("1e-2)\\n") and module.deep_equals(libcst.parse_module(module.code))
    print(json.dumps({"methods": result, "counts": counts}))
    """
)


def run(*args: str, dont_write: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if dont_write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([sys.executable, "-c", SIGNATURES, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_second_import_compiles_nothing_and_builds_the_same_methods(tmp_path):
    table = tmp_path / "table.marshal"
    plain = run("plain")
    first, second = run("reused", str(table)), run("reused", str(table))
    assert first["counts"]["compiled"] > 300 and first["counts"]["reused"] == 0
    assert second["counts"] == {"reused": first["counts"]["compiled"], "compiled": 0}
    assert len(plain["methods"]) > 600
    assert first["methods"] == plain["methods"] and second["methods"] == plain["methods"]


def test_a_write_removes_what_killed_writers_left_behind(tmp_path):
    table = tmp_path / "table.marshal"
    leftovers = [tmp_path / f".table.marshal.{pid}.140000.tmp" for pid in (4242, 4343)]
    for leftover in leftovers:
        leftover.write_bytes(b"half a table")
    other = tmp_path / ".other.marshal.4242.140000.tmp"
    other.write_bytes(b"someone else's")
    assert run("reused", str(table))["counts"]["compiled"] > 300
    assert table.is_file() and not any(leftover.exists() for leftover in leftovers) and other.exists()


def test_not_written_when_python_writes_no_bytecode(tmp_path):
    table = tmp_path / "table.marshal"
    assert run("reused", str(table), dont_write=True)["counts"]["compiled"] > 300
    assert not table.exists()


def _damage_values(data: bytes) -> bytes:
    """The same table with every code object replaced by source text that would run."""
    header = data[: len(compiled._HEADER)]
    table = marshal.loads(data[len(header) :])
    return header + marshal.dumps({source: "raise SystemExit('ran a string from the table')" for source in table})


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"\0\0\0\0" + data[4:],  # another interpreter's magic number
        lambda data: data[: len(compiled._HEADER)] + marshal.dumps(["not", "a", "table"]),
        _damage_values,
    ],
    ids=["truncated", "other-magic", "not-a-dict", "strings-not-code"],
)
def test_a_damaged_table_is_all_misses_and_is_written_again(tmp_path, damage):
    table = tmp_path / "table.marshal"
    compiled_count = run("reused", str(table))["counts"]["compiled"]
    good = table.read_bytes()
    table.write_bytes(damage(good))
    again = run("reused", str(table))
    assert again["counts"] == {"reused": 0, "compiled": compiled_count}
    assert run("reused", str(table))["counts"]["compiled"] == 0


def test_the_lookup_is_removed_when_the_import_fails(tmp_path):
    import dataclasses

    with pytest.raises(ZeroDivisionError):
        with compiled.reused(str(tmp_path / "table.marshal")):
            assert "exec" in vars(dataclasses)
            1 / 0
    assert "exec" not in vars(dataclasses)
    assert not (tmp_path / "table.marshal").exists()


def test_an_unwritable_folder_costs_nothing_but_the_reuse(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert run("reused", str(blocked / "table.marshal"))["counts"]["compiled"] > 300
    assert blocked.read_text() == "not a folder"


def test_only_the_methods_of_libcst_classes_are_kept(tmp_path):
    """wd-lint's own classes differ between the processes that write the table: left out."""
    import dataclasses

    with compiled.reused(str(tmp_path / "table.marshal")) as counts:

        @dataclasses.dataclass(frozen=True)
        class Point:
            x: int
            y: int = 2

    assert Point(1) == Point(1, 2) and repr(Point(3)).endswith("Point(x=3, y=2)")
    assert counts == {"reused": 0, "compiled": 0} and not (tmp_path / "table.marshal").exists()


def test_the_table_lives_in_the_users_cache_folder(tmp_path):
    path = compiled.table_path({"XDG_CACHE_HOME": str(tmp_path)})
    if sys.platform.startswith("linux"):
        assert path == os.path.join(str(tmp_path), "wd-lint", f"dataclass-code.{sys.implementation.cache_tag}.marshal")
    assert compiled.table_path({"XDG_CACHE_HOME": "relative"}) != os.path.join("relative", "wd-lint")


COMMAND = "from wd_guard.lint.entry import command; command()"  # the console script: spare, pool
IN_PROCESS = "import sys; from wd_guard.lint.cli import main; sys.exit(main())"  # no spare to write it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG cache folder")
@pytest.mark.parametrize(
    "launcher, options",
    [(COMMAND, []), (IN_PROCESS, ["--jobs", "0"])],
    ids=["workers", "in-process"],
)
def test_the_command_fills_the_table_and_then_reuses_it(tmp_path, user_env, launcher, options):
    """End to end: the workers, or the command itself when it analyses in its own process,
    write the table once, then only read it."""
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n")
    command = [sys.executable, "-c", launcher, "--no-cache", *options, str(bad)]
    table = Path(compiled.table_path(user_env) or "")
    outputs, written = [], []
    for _ in range(2):
        done = subprocess.run(command, env=user_env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        outputs.append(done.stdout)
        written.append(table.stat().st_mtime_ns)
    assert outputs[0] == outputs[1] and "WD101" in outputs[0]
    assert written[0] == written[1], "the second run missed something and wrote the table again"
    entries = marshal.loads(table.read_bytes()[len(compiled._HEADER) :])
    assert len(entries) > 300 and all(type(code).__name__ == "code" for code in entries.values())


FIX_IN_COMMAND = textwrap.dedent(
    """\
    import contextlib, json, sys
    from wd_guard.lint import compiled
    from wd_guard.lint.cli import main

    seen, plain = [], compiled.reused

    @contextlib.contextmanager
    def watched(*args):
        with plain(*args) as counts:
            yield counts
        seen.append(dict(counts))

    compiled.reused = watched
    code = main(["--no-cache", "--diff", "--unsafe-fixes", sys.argv[1]])
    print(json.dumps([code, "libcst" in sys.modules, seen]))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG cache folder")
def test_fixing_in_the_command_loads_libcst_from_the_table(tmp_path, user_env):
    """The command lints through its workers, then loads libcst itself to fix: from the table."""
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n")
    results = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", FIX_IN_COMMAND, str(bad)], env=user_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout.splitlines()[-1]))  # after the diff
    (code, loaded, seen), (_, _, seen_again) = results
    assert code == 1 and loaded
    assert [c["reused"] + c["compiled"] > 300 for c in seen] == [True]
    assert seen_again == [{"reused": seen[0]["reused"] + seen[0]["compiled"], "compiled": 0}]
