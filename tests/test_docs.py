"""The documentation: the site builds with warnings as errors, and every code block of every page runs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
#: pages allowed to show code that is not run, with how many such blocks (use sparingly: long training only)
NO_RUN_ALLOWED: dict[str, int] = {}
#: pages whose code renders pictures with Graphviz's dot
NEEDS_DOT = {"visualising.md"}


def _load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("symflow_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


def _require(ok: bool, what: str) -> None:
    """Skip without ``what`` on a developer machine; fail under CI, which must run everything."""
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{what} is missing; CI must build and run the docs for real")
        pytest.skip(f"{what} is missing")


def test_pages_found() -> None:
    names = {p.name for p in PAGES}
    assert {"index.md", "getting-started.md", "basics.md", "grad.md", "scan.md", "models.md",
            "testing-gradients.md", "visualising.md", "porting.md", "performance.md", "api.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_fence_is_extracted(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    fences = [line for line in text.splitlines() if line.lstrip().startswith("```")
              and any(k in line for k in ("python", "pycon", "```py"))]
    blocks = hooks.code_blocks(text)
    assert len(blocks) == len(fences)
    no_run = sum(b.kind == "no-run" for b in blocks)
    assert no_run <= NO_RUN_ALLOWED.get(page.name, 0), f"{page.name} has {no_run} blocks that are not run"


def test_code_blocks_parser() -> None:
    text = "\n".join([
        "# Title", "", "```python", "a = 1", "```", "", "```pycon", ">>> a + 1", "2", "```", "",
        "```{.python .no-run}", "train_for_hours()", "```", "", "```sh", "pip install symflow", "```", "",
        "````python", "s = '''", "```", "'''", "````", "",
        "- item", "", "    ```python", "    b = a", "    ```",
    ])
    blocks = hooks.code_blocks(text)
    assert [(b.kind, b.line) for b in blocks] == [("python", 4), ("pycon", 8), ("no-run", 13), ("python", 21),
                                                  ("python", 29)]
    assert blocks[0].code == "a = 1\n" and blocks[3].code == "s = '''\n```\n'''\n" and blocks[4].code == "b = a\n"
    with pytest.raises(ValueError, match="unclosed code fence opened at line 1"):
        hooks.code_blocks("```python\nx = 1\n")


def test_runner_fails_on_broken_snippets(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 2\n```\n\n```pycon\n>>> x * 3\n6\n```\n\n```python\nassert x == 3\n```\n")
    with pytest.raises(AssertionError) as info:
        hooks.run_page(page, tmp_path)
    assert info.traceback[-1].lineno == 10  # the page's own line number (0-based) in the traceback
    page.write_text("```python\nx = 2\n```\n\n```pycon\n>>> x * 3\n7\n```\n")
    with pytest.raises(hooks.SnippetError, match="doctest failed"):
        hooks.run_page(page, tmp_path)
    page.write_text("```{.python .no-run}\nraise SystemExit\n```\n\n"
                    "```pycon\n>>> y = 5\n```\n\n```python\nz = y + 1\n```\n")
    assert hooks.run_page(page, tmp_path)["z"] == 6  # blocks share one namespace, doctests included


@pytest.mark.parametrize("page", [p for p in PAGES if hooks.code_blocks(p.read_text(encoding="utf-8"))],
                         ids=lambda p: p.name)
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    if page.name in NEEDS_DOT:
        _require(shutil.which("dot") is not None, "Graphviz's dot program (apt-get install graphviz)")
    hooks.run_page(page, tmp_path)


def test_tensor_index_lists_every_function() -> None:
    import symflow.tensor as T

    index = hooks.tensor_index()
    for name in ("tanh", "dot", "argmax", "set_subtensor", "concatenate", "switch", "grad", "constant"):
        assert f"`T.{name}(" in index, name
    assert "`T.nnet.softmax(x, axis=None)` | Softmax along ``axis``." in index
    assert f"`T.{'where'}(cond, a, b)` | the same as `T.switch`" in index
    assert callable(T.where)


def test_site_builds_strictly(tmp_path: Path) -> None:
    _require(importlib.util.find_spec("mkdocs") is not None, "mkdocs (pip install -e '.[docs]')")
    _require(importlib.util.find_spec("mkdocstrings") is not None, "mkdocstrings (pip install -e '.[docs]')")
    _require(shutil.which("dot") is not None, "Graphviz's dot program (apt-get install graphviz)")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for picture in ("lstm_forward.svg", "lstm_train.svg", "lstm_train_before_rewrites.svg"):
        svg = (site / picture).read_text(encoding="utf-8")
        assert "<svg" in svg and "Scan{lstm}" in svg
    page = (site / "visualising" / "index.html").read_text(encoding="utf-8")
    assert 'src="../lstm_forward.svg"' in page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in ("symflow.function", "symflow.printing.pydotprint", "symflow.testing.verify_grad"):
        assert f'id="{anchor}"' in api
    assert "T.nnet.softmax" in api and "tensor-index" not in api


def test_readme_code_runs(tmp_path: Path) -> None:
    blocks = hooks.code_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) == 2 and all(b.kind == "python" for b in blocks)
    hooks.run_page(ROOT / "README.md", tmp_path)
