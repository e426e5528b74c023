"""Reads the fenced code blocks of the documentation and runs or checks them.

`tests/unit/test_docs.py` states the convention. This module holds the mechanics: finding the
blocks of a page, running a page's python blocks as one module (`python tests/docs_runner.py
PAGE` does that in a fresh working directory), checking the `core` command lines of shell
blocks against the cyclopts app, and parsing data blocks.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import secrets
import shlex
import sys
import tempfile
import tomllib
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: `<!-- docs-test: skip (reason) -->` on the line before a fence skips that block.
SKIP_MARK = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")
_FENCE_OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")

PYTHON = frozenset({"python", "py", "python3"})
SHELL = frozenset({"bash", "sh", "shell", "console"})
DATA = frozenset({"json", "yaml", "yml", "toml"})
# `env` blocks hold the framework's settings; `dotenv` blocks may hold other tools' variables
# (Compose's POSTGRES_PASSWORD), so they are prose.
ENV = frozenset({"env"})

# Variables the framework reads besides Settings' own fields.
_EXTRA_ENV = ("CORE_SUPERUSER_EMAIL", "CORE_SUPERUSER_PASSWORD", "CI")
_SHELL_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# `core init <project>`: a placeholder stands for one value, not a redirection.
_PLACEHOLDER = re.compile(r"<[\w.-]+>")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str  # dedented to the fence's indentation
    skip: str | None  # the reason of a `docs-test: skip` mark, if any

    @property
    def where(self) -> str:
        """`docs/models.md:12`: the page and the fence's line."""
        return f"{display(self.page)}:{self.line}"


def display(path: Path) -> str:
    """A path relative to the repository root."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def pages() -> list[Path]:
    """README.md and every page of docs/, in a stable order."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, in order (CommonMark fences: ``` or ~~~, indented or not)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opened = _FENCE_OPEN.match(lines[index])
        if opened is None:
            index += 1
            continue
        indent, fence = len(opened["indent"]), opened["fence"]
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [_dedent(line, indent) for line in lines[index + 1 : end]]
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        skipped = SKIP_MARK.match(previous)
        blocks.append(
            Block(
                page=page,
                line=index + 1,
                lang=opened["lang"].lower(),
                code="\n".join(body) + "\n",
                skip=skipped["reason"].strip() if skipped else None,
            )
        )
        index = end + 1
    return blocks


def _dedent(line: str, indent: int) -> str:
    # CommonMark removes up to the fence's indentation from each line of its content.
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(indent, stripped) :]


# -- python blocks ------------------------------------------------------------------------------
def clean_environment() -> dict[str, str]:
    """os.environ without anything the framework reads, so the embedded defaults apply."""
    from core.settings import Settings

    read = {name.upper() for name in Settings.model_fields} | set(_EXTRA_ENV)
    return {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in read and not name.upper().startswith("CORE_")
    }


def compile_block(block: Block) -> types.CodeType:
    """The block compiled with top-level `await` allowed, its line numbers those of the page."""
    try:
        tree = ast.parse(block.code, filename=str(block.page))
    except SyntaxError as exc:
        source = block.code.splitlines()
        if exc.lineno and exc.lineno <= len(source):
            exc.text = source[exc.lineno - 1]
        exc.filename = str(block.page)
        exc.lineno = (exc.lineno or 0) + block.line
        if exc.end_lineno is not None:
            exc.end_lineno += block.line
        raise
    ast.increment_lineno(tree, block.line)
    return compile(tree, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


async def run_python_blocks(page: Path) -> int:
    """Run the page's python blocks in order, in one module namespace; return how many ran."""
    blocks = [b for b in read_blocks(page) if b.lang in PYTHON and b.skip is None]
    name = "docs_" + re.sub(r"\W", "_", page.stem.lower())
    module = types.ModuleType(name, f"The python blocks of {display(page)}.")
    module.__file__ = str(page)
    sys.modules[name] = module
    for block in blocks:
        try:
            result = eval(compile_block(block), module.__dict__)  # noqa: S307  (the docs' code)
            if inspect.iscoroutine(result):
                await result
        except Exception as exc:
            raise BlockFailedError(block, exc) from exc
    return len(blocks)


class BlockFailedError(Exception):
    """A python block raised; the message is its traceback, from the page's frames down."""

    def __init__(self, block: Block, exc: Exception) -> None:
        tb = exc.__traceback__
        # Drop the runner's own frames: the story starts in the page.
        while tb is not None and tb.tb_frame.f_code.co_filename != str(block.page):
            tb = tb.tb_next
        lines = traceback.format_exception(type(exc), exc, tb)
        super().__init__(f"{block.where}: this python block failed:\n" + "".join(lines).rstrip())


def print_demo_graph(output_format: str) -> None:
    """Run `core container graph --format FORMAT` on the demo app, as docs/architecture.md shows.

    From an empty directory and without the framework's variables in the environment, so a
    developer's `.env` or shell does not change the picture.
    """
    clean = clean_environment()
    os.environ.clear()
    os.environ.update(clean)
    sys.path.insert(0, str(ROOT))
    from examples.demo import app as demo

    from core.cli import main as core

    with tempfile.TemporaryDirectory(prefix="docs-graph-") as workdir:
        os.chdir(workdir)
        # The demo builds its app in a factory, and the command takes the `module:attr` of an
        # app, so give the module the attribute the command reads.
        demo.app = demo.create_app()  # type: ignore[attr-defined]
        core(["container", "graph", "--format", output_format, "--app", f"{demo.__name__}:app"])
        os.chdir(ROOT)


def main(argv: list[str] | None = None) -> None:
    """`python tests/docs_runner.py PAGE`: run PAGE's python blocks in a fresh directory.

    `python tests/docs_runner.py --graph mermaid` prints the demo app's container graph instead
    (the picture in docs/architecture.md).
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--graph":
        print_demo_graph(args[1])
        return
    if len(args) != 1:
        raise SystemExit("usage: docs_runner.py PAGE | --graph text|mermaid|dot")
    page = Path(args[0]).resolve()
    clean = clean_environment()
    os.environ.clear()
    os.environ.update(clean)
    with tempfile.TemporaryDirectory(prefix="docs-") as workdir:
        os.chdir(workdir)
        # As in a project `core init` made: a private random SECRET_KEY in `.env`.
        Path(workdir, ".env").write_text(f"SECRET_KEY={secrets.token_urlsafe(48)}\n")
        # As `python -m` does for a project: the working directory is importable.
        sys.path.insert(0, workdir)
        try:
            ran = asyncio.run(run_python_blocks(page))
        except BlockFailedError as failure:
            print(failure, file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)
        os.chdir(ROOT)
    print(f"{display(page)}: {ran} python block(s) ran")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: a page may leave an aiosqlite thread behind
    # (sqlalchemy/sqlalchemy#13039), which would only add noise after success.
    os._exit(0)


# -- shell blocks -------------------------------------------------------------------------------
def shell_commands(block: Block) -> Iterator[tuple[int, list[str]]]:
    """(line, argv after `core`) for every `core` invocation in a shell or console block.

    Console blocks contribute their `$ ` lines only. A line may chain commands (`&&`, `|`, `;`)
    and prefix them with variable assignments (`APP_MODULE=x core ...`); redirections and
    comments are dropped, and a `<placeholder>` counts as one value.
    """
    lines = block.code.splitlines()
    index = 0
    while index < len(lines):
        number = block.line + 1 + index
        line = lines[index]
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + " " + lines[index]
        index += 1
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        line = _PLACEHOLDER.sub("PLACEHOLDER", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for segment in _segments(list(lexer)):
            while segment and _ASSIGNMENT.match(segment[0]):
                segment = segment[1:]
            if segment and segment[0] == "core":
                yield number, segment[1:]


def _segments(tokens: list[str]) -> Iterator[list[str]]:
    current: list[str] = []
    redirected = False
    for token in tokens:
        if token in _SHELL_SEPARATORS:
            yield current
            current, redirected = [], False
        elif token.startswith((">", "<")):
            redirected = True
        elif not redirected:
            current.append(token)
    yield current


def check_core_command(argv: list[str]) -> str | None:
    """None when `core <argv>` names a real command with real options, else cyclopts' error."""
    from cyclopts import CycloptsError

    from core.cli import app

    try:
        app.parse_args(argv, exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


# -- data and env blocks ------------------------------------------------------------------------
def parse_data_block(block: Block) -> Any:
    """The parsed content of a json, yaml or toml block (raises when it does not parse)."""
    if block.lang == "json":
        return json.loads(block.code)
    if block.lang == "toml":
        return tomllib.loads(block.code)
    import yaml

    return list(yaml.safe_load_all(block.code))


def unknown_settings(block: Block) -> list[tuple[int, str]]:
    """(line, NAME) for each `NAME=` of an env block that no Settings field reads."""
    from core.settings import Settings

    known = {name.upper() for name in Settings.model_fields}
    unknown = []
    for offset, line in enumerate(block.code.splitlines(), start=1):
        name, equals, _ = line.strip().partition("=")
        if equals and not name.startswith("#") and name.strip().upper() not in known:
            unknown.append((block.line + offset, name.strip()))
    return unknown


if __name__ == "__main__":
    main()
