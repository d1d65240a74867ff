"""Which files wd-lint reads: recursion, skipped folders, excludes, odd names, links that loop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wd_guard.lint.files import discover as discover_module
from wd_guard.lint.files.discover import discover, is_excluded, matches


def touch(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def names(found, root: Path):
    return [Path(p).resolve().relative_to(root.resolve()).as_posix() for p in found.files]


def test_recurses_into_python_files_in_name_order(tmp_path):
    for rel in ["b.py", "a/z.py", "a/b/c.py", "notes.txt", "script", "a/stub.pyi"]:
        touch(tmp_path / rel)
    found = discover([str(tmp_path)], root=tmp_path)
    assert names(found, tmp_path) == ["a/b/c.py", "a/z.py", "b.py"]
    assert found.problems == []


def test_skips_tool_folders_and_virtual_environments(tmp_path):
    for folder in [".git", ".venv", "venv", "build", "dist", "__pycache__", "node_modules", ".tox", "pkg/build"]:
        touch(tmp_path / folder / "hidden.py")
    touch(tmp_path / "my-env" / "pyvenv.cfg", "home = /usr\n")  # a venv under any name
    touch(tmp_path / "my-env" / "lib" / "site.py")
    touch(tmp_path / "pkg" / "kept.py")
    found = discover([str(tmp_path)], root=tmp_path)
    assert names(found, tmp_path) == ["pkg/kept.py"]


def test_named_files_are_read_whatever_their_name(tmp_path):
    script = touch(tmp_path / "build" / "train")  # no suffix, in a folder walking would skip
    found = discover([str(script)], root=tmp_path)
    assert found.files == [str(script)]


def test_no_paths_means_the_current_folder(tmp_path, monkeypatch):
    touch(tmp_path / "pkg" / "model.py")
    monkeypatch.chdir(tmp_path)
    found = discover([], root=tmp_path)
    assert found.files == [os.path.join("pkg", "model.py")]


def test_zero_files_is_not_a_problem(tmp_path):
    touch(tmp_path / "README.md")
    found = discover([str(tmp_path)], root=tmp_path)
    assert found.files == [] and found.problems == []


def test_missing_path_is_a_problem_and_others_still_found(tmp_path):
    kept = touch(tmp_path / "kept.py")
    found = discover([str(tmp_path / "gone.py"), str(kept)], root=tmp_path)
    assert found.files == [str(kept)]
    assert [(p.path, p.reason) for p in found.problems] == [(str(tmp_path / "gone.py"), "no such file or directory")]


def test_folder_named_like_a_python_file_is_walked(tmp_path):
    touch(tmp_path / "weird.py" / "inside.py")
    touch(tmp_path / "weird.py" / "deeper.py" / "leaf.py")
    assert names(discover([str(tmp_path)], root=tmp_path), tmp_path) == ["weird.py/deeper.py/leaf.py", "weird.py/inside.py"]
    assert names(discover([str(tmp_path / "weird.py")], root=tmp_path), tmp_path) == [
        "weird.py/deeper.py/leaf.py",
        "weird.py/inside.py",
    ]


def test_symlink_loops_terminate_and_each_file_is_found_once(tmp_path):
    touch(tmp_path / "pkg" / "a.py")
    (tmp_path / "pkg" / "up").symlink_to(tmp_path, target_is_directory=True)  # pkg/up -> root
    (tmp_path / "x").symlink_to(tmp_path / "y")  # x -> y -> x
    (tmp_path / "y").symlink_to(tmp_path / "x")
    (tmp_path / "self.py").symlink_to(tmp_path / "self.py")  # a loop with a Python name
    (tmp_path / "alias").symlink_to(tmp_path / "pkg", target_is_directory=True)
    found = discover([str(tmp_path)], root=tmp_path)
    real = sorted(os.path.realpath(p) for p in found.files)
    assert real == sorted({os.path.realpath(tmp_path / "pkg" / "a.py"), os.path.realpath(tmp_path / "self.py")})
    assert found.problems == []


def test_same_file_named_twice_is_read_once(tmp_path):
    a = touch(tmp_path / "a.py")
    found = discover([str(a), str(tmp_path), str(a)], root=tmp_path)
    assert found.files == [str(a)]


def test_dangling_link_with_python_name_is_kept_for_the_runner_to_report(tmp_path):
    (tmp_path / "broken.py").symlink_to(tmp_path / "missing.py")
    found = discover([str(tmp_path)], root=tmp_path)
    assert [Path(p).name for p in found.files] == ["broken.py"]


def test_unlistable_folder_is_a_problem(tmp_path, monkeypatch):
    touch(tmp_path / "ok" / "a.py")
    touch(tmp_path / "locked" / "b.py")
    real_scandir = os.scandir

    def scandir(path):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(discover_module.os, "scandir", scandir)
    found = discover([str(tmp_path)], root=tmp_path)
    assert names(found, tmp_path) == ["ok/a.py"]
    assert [(Path(p.path).name, p.reason) for p in found.problems] == [("locked", "cannot list folder: Permission denied")]


def test_exclude_patterns_apply_to_walked_and_named_paths(tmp_path):
    for rel in ["src/gen/a.py", "src/keep.py", "src/api_pb2.py", "tests/gen/b.py", "generated/c.py"]:
        touch(tmp_path / rel)
    patterns = ["src/gen/", "*_pb2.py", "generated"]
    found = discover([str(tmp_path)], exclude=patterns, root=tmp_path)
    assert names(found, tmp_path) == ["src/keep.py", "tests/gen/b.py"]
    named = discover([str(tmp_path / "src" / "api_pb2.py"), str(tmp_path / "src" / "gen")], exclude=patterns, root=tmp_path)
    assert named.files == [] and named.problems == []


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("build", "pkg/build/x.py", True),
        ("*_pb2.py", "a/b/c_pb2.py", True),
        ("src/gen", "src/gen/x.py", True),
        ("src/gen/", "src/gen/x.py", True),
        ("/src/gen", "src/gen/x.py", True),
        ("src/gen", "other/src/gen/x.py", False),
        ("tests/*", "tests/test_a.py", True),
        ("tests/*.py", "src/tests/test_a.py", False),
        ("gen", "generator.py", False),
    ],
)
def test_pattern_semantics(pattern, path, expected):
    assert matches(pattern, path) is expected


def test_name_patterns_apply_outside_the_root(tmp_path):
    outside = tmp_path / "elsewhere" / "legacy" / "x.py"
    root = tmp_path / "project"
    root.mkdir()
    assert is_excluded(str(outside), ["legacy"], root)
    assert not is_excluded(str(outside), ["elsewhere/legacy"], root)
