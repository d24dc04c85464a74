"""MkDocs hooks for symflow's docs, and the runner that executes the pages' code blocks.

Every ```python block of a page runs, in order, in one namespace per page; ```pycon blocks are
doctests (their printed output is checked) in the same namespace. A block fenced as
```{.python .no-run} is shown but not run. The pages listed in ``PICTURE_PAGES`` are run at build
time in a scratch directory, and every SVG their code writes becomes part of the site next to
the page, so the pictures are always those the shown code draws.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

#: pages whose code draws the pictures they show
PICTURE_PAGES = ("visualising.md",)
#: replaced, on any page, by a generated index of the functions in ``symflow.tensor`` and ``T.nnet``
TENSOR_INDEX = "<!-- tensor-index -->"
_TOPICS = {
    "symflow.tensor": "Constructors and conversions",
    "symflow.ops.math": "Elementwise arithmetic, math and comparisons",
    "symflow.ops.elemwise": "Elementwise arithmetic, math and comparisons",
    "symflow.ops.reduce": "Reductions",
    "symflow.ops.shape": "Shapes, broadcasting and new arrays",
    "symflow.ops.subtensor": "Indexing",
    "symflow.ops.extra": "Running sums and products, sorting, differences, one-hot (T.extra_ops)",
    "symflow.ops.selection": "Selecting by value: nonzero, bincount, compress, searchsorted, unique",
    "symflow.ops.dot": "Products",
    "symflow.ops.nnet": "Neural networks (T.nnet)",
    "symflow.tensor.nnet": "Neural networks (T.nnet)",
}

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})[ ]*(?P<info>[^\n`]*)$")


class Block(NamedTuple):
    """One fenced code block of a page: its kind (``python``, ``pycon`` or ``no-run``), first line and code."""

    kind: str
    line: int
    code: str


def _kind(info: str) -> str | None:
    info = info.strip()
    if info in ("python", "py"):
        return "python"
    if info == "pycon":
        return "pycon"
    if info.startswith("{") and info.endswith("}"):
        classes = [c.lstrip(".") for c in info[1:-1].split()]
        if classes and classes[0] in ("python", "py", "pycon"):
            return "no-run" if "no-run" in classes else ("pycon" if classes[0] == "pycon" else "python")
    return None


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def code_blocks(markdown: str) -> list[Block]:
    """The Python blocks of a markdown page, in order (blocks in other languages are skipped)."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        kind = _kind(m.group("info"))
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not _closes(lines[j], fence):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"unclosed code fence opened at line {i + 1}")
        if kind is not None:
            blocks.append(Block(kind, i + 2, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


class SnippetError(AssertionError):
    """A code block of the docs failed."""


@contextlib.contextmanager
def _settings_restored() -> Iterator[None]:
    import symflow

    saved = dict(vars(symflow.config))
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(symflow.config, key, value)


def run_page(path: Path, workdir: Path) -> dict[str, Any]:
    """Run the page's blocks in order inside ``workdir``; returns the namespace they built."""
    text = path.read_text(encoding="utf-8")
    # the page runs as a script does: in a module of its own that compiled code can import from
    page_module = types.ModuleType(f"docs_{path.stem.replace('-', '_')}")
    namespace: dict[str, Any] = page_module.__dict__
    sys.modules[page_module.__name__] = page_module
    parser = doctest.DocTestParser()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.REPORT_ONLY_FIRST_FAILURE
    old = Path.cwd()
    os.chdir(workdir)
    try:
        with _settings_restored():
            for block in code_blocks(text):
                where = f"{path.name}, block at line {block.line}"
                if block.kind == "python":
                    code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
                    exec(code, namespace)  # noqa: S102 - running the docs is the point
                elif block.kind == "pycon":
                    test = parser.get_doctest(block.code, namespace, where, str(path), block.line - 1)
                    runner = doctest.DocTestRunner(optionflags=flags)
                    report: list[str] = []
                    runner.run(test, out=report.append, clear_globs=False)
                    namespace.update(test.globs)  # the doctest ran in a copy of the page's namespace
                    if runner.failures:
                        raise SnippetError(f"{where}: doctest failed\n" + "".join(report))
    finally:
        os.chdir(old)
        sys.modules.pop(page_module.__name__, None)
    return namespace


def _plain_signature(fn: Any) -> str:
    """``(x, axis=None)``: parameter names and defaults, without annotations."""
    import inspect

    parts = []
    for p in inspect.signature(fn).parameters.values():
        text = ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
        if p.default is not p.empty:
            text += f"={p.default!r}"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def tensor_index() -> str:
    """Markdown tables of every public function of ``symflow.tensor`` and ``T.nnet``, grouped by topic."""
    import inspect

    import symflow.tensor as T

    seen: dict[int, str] = {}  # first name met, for functions whose own name T does not have
    rows: dict[str, list[str]] = {}
    entries = [(name, getattr(T, name)) for name in sorted(vars(T))]
    entries += [(f"nnet.{name}", getattr(T.nnet, name)) for name in sorted(T.nnet.__all__)]
    for name, obj in entries:
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        canonical = obj.__name__ if getattr(T, obj.__name__, None) is obj else seen.setdefault(id(obj), name)
        if name.startswith("nnet.") and getattr(T.nnet, obj.__name__, None) is obj:
            canonical = f"nnet.{obj.__name__}"
        if canonical != name:
            text = f"the same as `T.{canonical}`"
        else:
            text = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        if obj.__qualname__.endswith("<locals>.make"):
            continue  # the T.matrix() style constructors: one row below
        signature = _plain_signature(obj)
        topic = "Neural networks (T.nnet)" if name.startswith("nnet.") else _TOPICS.get(obj.__module__, "Other")
        rows.setdefault(topic, []).append(f"| `T.{name}{signature}` | {text} |")
    rows.setdefault(_TOPICS["symflow.tensor"], []).insert(0, (
        "| `T.scalar(name=None, dtype=None)`, `T.vector`, `T.matrix`, `T.row`, `T.col`, `T.tensor3`, `T.tensor4`, "
        "`T.tensor5` | a new symbolic input; with a dtype prefix (`T.fmatrix`, `T.ivector` ...) of that dtype |"))
    order = list(dict.fromkeys(_TOPICS.values())) + ["Other"]
    parts = []
    for topic in order:
        if topic in rows:
            parts.append(f"### {topic}\n\n| function | description |\n| --- | --- |\n" + "\n".join(rows[topic]))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# MkDocs events
# ---------------------------------------------------------------------------------------------
def on_files(files: Any, config: Any) -> Any:
    """Run the picture pages and add the SVG files their code writes to the site."""
    from mkdocs.structure.files import File

    docs_dir = Path(config["docs_dir"])
    for page in PICTURE_PAGES:
        with tempfile.TemporaryDirectory(prefix="symflow-docs-") as tmp:
            with contextlib.redirect_stdout(io.StringIO()):  # what the page prints is not build output
                run_page(docs_dir / page, Path(tmp))
            for svg in sorted(Path(tmp).glob("*.svg")):
                uri = str(Path(page).parent / svg.name).removeprefix("./")
                files.append(File.generated(config, uri, content=svg.read_bytes()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill in the generated tensor index."""
    return markdown.replace(TENSOR_INDEX, tensor_index()) if TENSOR_INDEX in markdown else markdown
