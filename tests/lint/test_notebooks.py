"""Jupyter notebooks: code cells linted as Python, positions by cell, ``--fix`` that keeps the rest."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from wd_guard.lint.analysis.cache import Cache
from wd_guard.lint.api import Options, lint_paths
from wd_guard.lint.command.cli import main
from wd_guard.lint.diagnostic import NOTEBOOK, Job
from wd_guard.lint.intake.notebook import read, split


def code(*lines: str, outputs: Any = ()) -> Dict[str, Any]:
    source = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    return {"cell_type": "code", "execution_count": 1, "metadata": {"tags": []}, "outputs": list(outputs), "source": source}


def markdown(text: str) -> Dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": [text]}


OUTPUT = {"name": "stdout", "output_type": "stream", "text": ["loss 0.25 — déjà vu\n"]}
CELLS = [
    markdown("# Training"),
    code("%matplotlib inline", "import torch", "!pip install tqdm", "gpus = !nvidia-smi -L", outputs=[OUTPUT]),
    code("model = torch.nn.Linear(4, 4)", "opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)"),
    code("%%bash", "python -c 'torch.optim.Adam(p, weight_decay=1)'"),
    code("%%time", "for _ in range(2):", "    %time step()", "    later = torch.optim.RMSprop(params, weight_decay=1e-4)  # noqa: WD101"),
    markdown("done"),
]


def notebook(cells: List[Dict[str, Any]], **metadata: Any) -> Dict[str, Any]:
    return {"cells": copy.deepcopy(cells), "metadata": {"kernelspec": {"name": "python3"}, **metadata}, "nbformat": 4, "nbformat_minor": 5}


def write(path: Path, document: Dict[str, Any], indent: int = 1, ensure_ascii: bool = False) -> Path:
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=ensure_ascii) + "\n", encoding="utf-8")
    return path


def run(capsys, *argv: str):
    code_ = main(["--jobs", "0", "--no-cache", *argv])
    captured = capsys.readouterr()
    return code_, captured.out, captured.err


def test_positions_are_cell_and_line_in_text_and_json(tmp_path, capsys):
    path = write(tmp_path / "nb.ipynb", notebook(CELLS))
    status, out, err = run(capsys, str(path))
    assert status == 1
    assert [line.split(": ", 1)[0] + ": " + line.split(": ", 1)[1][:5] for line in out.splitlines()] == [
        f"{path}:cell 3:2:7: WD101",
        f"{path}:cell 3:2:24: WD210",
    ]
    assert "1 silenced by noqa" in err  # the RMSprop of cell 5, under %%time
    status, out, _ = run(capsys, "--format", "json", str(path))
    rows = [(item["code"], item["cell"], item["line"], item["column"], item["end_line"]) for item in json.loads(out)]
    assert rows == [("WD101", 3, 2, 7, 2), ("WD210", 3, 2, 24, 2)]


def test_ipython_syntax_is_skipped_and_restored():
    data = json.dumps(notebook(CELLS)).encode()
    joined = read(data)
    assert "%matplotlib" not in joined.text.replace("pass  # wd-lint: ipython %matplotlib", "")
    assert "bash" not in joined.text  # a %%bash cell is not Python
    assert [number for number, _, _ in joined.cells.spans] == [2, 3, 5]
    sources = split(joined.text, 3)
    assert sources == ["".join(CELLS[i]["source"]) for i in (1, 2, 4)]


def test_folder_walk_reads_notebooks(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "nb.ipynb", notebook(CELLS))
    (tmp_path / "sub" / ".ipynb_checkpoints").mkdir()
    write(tmp_path / "sub" / ".ipynb_checkpoints" / "nb-checkpoint.ipynb", notebook(CELLS))
    status, out, _ = run(capsys, str(tmp_path))
    assert status == 1 and {line.split(":")[0] for line in out.splitlines()} == {str(tmp_path / "sub" / "nb.ipynb")}


def test_syntax_error_in_a_cell_exits_2_with_its_cell(tmp_path, capsys):
    cells = [markdown("x"), code("import torch"), code("opt = torch.optim.Adam(params,", "x = 1")]
    path = write(tmp_path / "nb.ipynb", notebook(cells))
    status, _, err = run(capsys, str(path))
    assert status == 2 and f"{path}:cell 3:1:" in err and "never closed" in err


def test_invalid_notebook_json_exits_2(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    path.write_text('{"cells": [{"source": "torch.optim.Adam(p, weight_decay=1)"')
    status, _, err = run(capsys, str(path))
    assert status == 2 and f"{path}:1:" in err and "invalid notebook JSON" in err


@pytest.mark.parametrize("indent, ensure_ascii", [(1, False), (2, True), (4, False)])
def test_fix_rewrites_only_the_changed_cell_sources(tmp_path, capsys, indent, ensure_ascii):
    document = notebook(CELLS, widgets={"state": {"x": 1.5}})
    path = write(tmp_path / "nb.ipynb", document, indent, ensure_ascii)
    before = path.read_text(encoding="utf-8")
    status, out, err = run(capsys, "--fix", "--unsafe-fixes", str(path))
    assert status == 0 and out == "" and "Fixed" in err
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["cells"][2]["source"] == [
        "model = torch.nn.Linear(4, 4)\n",
        "opt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=1e-2), lr=1e-3)",
    ]
    assert after["cells"][1]["source"] == ["import wd_guard\n", "%matplotlib inline\n", "import torch\n", "!pip install tqdm\n", "gpus = !nvidia-smi -L"]
    # Everything else, outputs and metadata included, is as it was, and so is the JSON style.
    for index in (0, 3, 4, 5):
        assert after["cells"][index] == document["cells"][index]
    assert after["cells"][1]["outputs"] == [OUTPUT] and after["metadata"] == document["metadata"]
    document["cells"][1]["source"] = after["cells"][1]["source"]
    document["cells"][2]["source"] = after["cells"][2]["source"]
    expected = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii) + "\n"
    assert path.read_text(encoding="utf-8") == expected != before
    status, _, _ = run(capsys, "--fix", "--unsafe-fixes", str(path))
    assert status == 0 and path.read_text(encoding="utf-8") == expected  # fixing fixed code changes nothing


def test_fix_refuses_a_notebook_it_cannot_write_back_byte_stable(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    text = json.dumps(notebook(CELLS), indent=1).replace('"nbformat": 4', '"nbformat":   4')
    path.write_text(text)
    status, _, err = run(capsys, "--fix", "--unsafe-fixes", str(path))
    assert status == 2 and "without reformatting its JSON" in err
    assert path.read_text() == text


def test_cache_serves_notebooks_with_cell_positions(tmp_path):
    path = write(tmp_path / "nb.ipynb", notebook(CELLS))
    options = Options(processes=0, cache_dir=tmp_path / "cache", root=tmp_path)
    first = lint_paths([str(path)], options)
    joined = read(path.read_bytes())
    assert Cache.open(tmp_path / "cache").get(Job(str(path), joined.text, options.codes, NOTEBOOK, joined.cells.spans)) is not None
    again = lint_paths([str(path)], options)
    assert again.diagnostics == first.diagnostics and {d.cell for d in again.diagnostics} == {3}
