"""Every snippet in README.md works as written.

Python blocks run in a subprocess; names they use without defining (``model``,
``datamodule``) come from a tiny prelude. Shell lines run in a temporary project whose
``src/`` holds a file with known mistakes. YAML blocks are checked against what they configure.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest
import yaml

import wd_guard
from wd_guard.catalogue import get_rule

from docs_helpers import EXAMPLES, ROOT

BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)

# Stand-ins for the objects a README snippet assumes the reader already has.
PRELUDE: Dict[str, str] = {
    "model": """
        import lightning as L
        import torch
        from torch import nn

        class TinyModel(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))

            def training_step(self, batch, batch_idx):
                x, y = batch
                return nn.functional.cross_entropy(self.net(x), y)

            def configure_optimizers(self):
                return torch.optim.Adam(self.parameters(), lr=1e-3, weight_decay=1e-2)

        model = TinyModel()
        """,
    "datamodule": """
        import lightning as L
        import torch
        from torch.utils.data import TensorDataset

        data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
        datamodule = L.LightningDataModule.from_datasets(train_dataset=data, batch_size=4)
        """,
}
# What a run of the prelude's model must print: the callback saw its coupled Adam.
PRELUDE_SHOWS = {"model": "WD101"}


def blocks(language: str) -> List[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def undefined_names(source: str) -> Set[str]:
    """Names a snippet reads but never binds (imports, assignments, defs, loop targets)."""
    tree = ast.parse(source)
    bound, loaded = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return loaded - bound


def test_readme_has_the_snippets_these_tests_run():
    assert len(blocks("python")) >= 2 and len(blocks("bash")) >= 3 and len(blocks("yaml")) >= 2


# Runs each snippet file given on the command line in a fresh namespace, in one interpreter
# (torch and Lightning are imported once), and writes its output and status next to it.
DRIVER = """
import contextlib, runpy, sys, traceback, warnings
warnings.simplefilter("always")
for path in sys.argv[1:]:
    with open(path + ".out", "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_path(path, run_name="__main__")
            status = "ok"
        except BaseException:
            traceback.print_exc()
            status = "failed"
    with open(path + ".status", "w") as handle:
        handle.write(status)
"""


def snippet_script(source: str) -> str:
    """The snippet after a prelude that defines the names it uses but does not define."""
    needed = undefined_names(source)
    assert needed <= set(PRELUDE), f"snippet uses {needed - set(PRELUDE)} without defining them"
    prelude = "import torch\ntorch.set_num_threads(1)\n"
    return prelude + "".join(textwrap.dedent(PRELUDE[name]) for name in sorted(needed)) + "\n" + source


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_snippets_run(tmp_path):
    sources = blocks("python")
    paths = [tmp_path / f"snippet_{index}.py" for index in range(len(sources))]
    for path, source in zip(paths, sources):
        path.write_text(snippet_script(source))
    (tmp_path / "driver.py").write_text(DRIVER)
    driver = subprocess.run([sys.executable, "driver.py", *map(str, paths)], cwd=tmp_path, capture_output=True, text=True, timeout=290)
    assert driver.returncode == 0, driver.stdout + driver.stderr
    for path, source in zip(paths, sources):
        output = Path(f"{path}.out").read_text()
        assert Path(f"{path}.status").read_text() == "ok", f"README snippet failed:\n{source}\n{output}"
        for name in undefined_names(source) & set(PRELUDE_SHOWS):
            assert PRELUDE_SHOWS[name] in output, output
        # Codes a snippet's comments promise must be in what it prints.
        for code in re.findall(r"WD\d{3}", " ".join(re.findall(r"#.*", source))):
            assert code in output, f"the snippet's comment promises {code}; output:\n{output}"


def shell_lines() -> List[str]:
    lines = []
    for body in blocks("bash"):
        for line in body.splitlines():
            command = line.split(" #")[0].strip()
            if command:
                lines.append(command)
    return lines


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A user's project: src/ holds a file with known mistakes, plus a copy of the docs tooling."""
    (tmp_path / "src").mkdir()
    shutil.copy(EXAMPLES / "bad_optimizers.py", tmp_path / "src" / "train.py")
    for name in ("scripts", "docs"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def run_shell(command: str, cwd: Path) -> Tuple[int, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    argv = shlex.split(command)
    # Console scripts run with this interpreter, whatever their shebang says.
    argv[:1] = [sys.executable] if argv[0] == "python" else [sys.executable, str(BIN / argv[0])]
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def check_make(command: str, project: Path) -> None:
    # `make demo` and `make test` are run by tests/docs/test_docs_examples.py and by CI;
    # here: the Makefile target exists and runs what those tests run.
    target = command.split()[1]
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe, f"Makefile has no target {target!r}"
    assert {"demo": "examples/demo.py", "test": "pytest"}[target] in recipe.group(1)


def check_pip(command: str, project: Path) -> None:
    # Installing from the package index needs the network; check that what it names exists.
    pyproject = (ROOT / "pyproject.toml").read_text()
    for requirement in shlex.split(command)[2:]:
        name, _, extra = requirement.rstrip("]").partition("[")
        assert name == "wd-guard" or name == "flake8"
        assert not extra or re.search(rf"^{extra} = \[", pyproject, flags=re.M)


def check_wd_lint(command: str, project: Path) -> None:
    status, output = run_shell(command, project)
    if "--explain" in command:
        assert status == 0, output
        assert output.strip() == get_rule(command.split()[-1]).explain().strip()
    elif "--diff" in command:
        assert status == 1, output
        assert "+++ b/src/train.py" in output and "+    return AdamW(" in output, output
        assert (project / "src" / "train.py").read_text() == (EXAMPLES / "bad_optimizers.py").read_text()
    else:
        assert status == 1, output
        assert re.search(r"src/train\.py:\d+:\d+: WD101 ", output), output


def check_flake8(command: str, project: Path) -> None:
    status, output = run_shell(command, project)
    assert status == 1, output
    assert re.search(r"src/train\.py:\d+:\d+: WD101 ", output), output


def check_gen_docs(command: str, project: Path) -> None:
    status, output = run_shell(command, project)
    assert status == 0, output
    assert (project / "README.md").read_text() == (ROOT / "README.md").read_text()


CHECKS = {"make": check_make, "pip": check_pip, "wd-lint": check_wd_lint, "flake8": check_flake8, "python": check_gen_docs}


@pytest.mark.slow
@pytest.mark.parametrize("command", shell_lines())
def test_shell_command_works(command, project):
    program = command.split()[0]
    assert program in CHECKS, f"README runs {program!r}, which no test covers"
    CHECKS[program](command, project)


def test_precommit_snippet_is_a_valid_config_for_this_hook_and_version(tmp_path):
    from pre_commit.clientlib import load_config

    (body,) = [body for body in blocks("yaml") if "repos:" in body and "repo: local" in body]
    (tmp_path / ".pre-commit-config.yaml").write_text(body)
    (repo,) = load_config(str(tmp_path / ".pre-commit-config.yaml"))["repos"]
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [hook["id"] for hook in repo["hooks"]] == ["wd-lint"]
    (shipped,) = [hook for hook in hooks if hook["id"] == "wd-lint"]
    assert repo["hooks"][0]["entry"] == shipped["entry"]
    assert repo["hooks"][0]["types_or"] == shipped["types_or"]
    assert "wd-lint-config" in [hook["id"] for hook in hooks]


def test_remote_precommit_snippet_pins_no_tag_that_does_not_exist():
    import subprocess

    (body,) = [body for body in blocks("yaml") if "repos:" in body and "repo: local" not in body]
    (rev,) = re.findall(r"rev: (.+)", body)
    tags = subprocess.run(["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    # Either a tag this repository has, or the instruction to pin a commit the user reviewed.
    assert rev in tags or rev == "<full commit hash or tag>", rev


def test_lightning_cli_snippet_is_what_the_example_config_uses():
    (snippet,) = [yaml.safe_load(body) for body in blocks("yaml") if "trainer:" in body]
    example = yaml.safe_load((EXAMPLES / "lightning_cli.yaml").read_text())
    for callback in snippet["trainer"]["callbacks"]:
        assert callback["class_path"] in [c["class_path"] for c in example["trainer"]["callbacks"]]
