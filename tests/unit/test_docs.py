"""The documentation runs: every fenced code block of README.md and docs/*.md is run or checked.

The convention, for anyone writing a page:

- ```python blocks: all the python blocks of one page run in order as one module (one
  namespace), top-level `await` allowed, in a fresh temporary working directory, with every
  variable the framework reads (DATABASE_URL, MESSAGE_BROKER, ...) removed from the
  environment, so the embedded defaults apply: SQLite at ./app.db, in-memory broker and task
  queue. A page is one test (`test_python_blocks_run[models.md]`); a failure names the page and
  the line. Write examples as a script a reader could paste: define what they use (models,
  schemas) in an earlier block of the same page, open sessions with `async with app.session()`.
- ```bash, ```sh and ```console blocks are not run. Every `core ...` command in them (console
  blocks: the `$ ` lines) is parsed against the `core` cyclopts app: the command and its options
  must exist. Other programs (make, pip, docker, curl) are left alone.
- ```json, ```yaml and ```toml blocks must parse. In ```env blocks every `NAME=` must be a
  setting (`core.settings.Settings`); use ```dotenv for a file with other tools' variables.
- Anything else (```text, ```dotenv, ```mermaid, ```dockerfile, ```javascript, ...) is prose.
- Skips: none by default. Where running a block is impossible (it needs a real Kafka broker,
  say), put `<!-- docs-test: skip (the reason) -->` on the line before its fence. The test id
  says how many blocks of the page were skipped (`brokers.md-1-skipped`). Prefer rewriting the
  example for the embedded defaults.

Run it with `.venv/bin/pytest tests/unit/test_docs.py`; one page with
`.venv/bin/pytest tests/unit/test_docs.py -k models.md`, or `.venv/bin/python
tests/docs_runner.py docs/models.md` to see its output.

docs/architecture.md also carries the container graph as `core container graph --format
mermaid` prints it for the demo app (examples/demo); a test keeps the two equal. When the
container changes, paste what `.venv/bin/python tests/docs_runner.py --graph mermaid` prints
into its mermaid block. docs/README.md must link every page, links between pages must resolve,
and docs/configuration.md's table must name every setting.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.docs_runner import (
    DATA,
    DOCS,
    ENV,
    PYTHON,
    ROOT,
    SHELL,
    Block,
    check_core_command,
    clean_environment,
    display,
    pages,
    parse_data_block,
    read_blocks,
    shell_commands,
    unknown_settings,
)

RUNNER = ROOT / "tests" / "docs_runner.py"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _page_id(page: Path) -> str:
    name = page.name if page.parent == DOCS and page.name != "README.md" else display(page)
    skipped = sum(1 for block in read_blocks(page) if block.skip is not None)
    return name + (f"-{skipped}-skipped" if skipped else "")


def _blocks(page: Path, langs: frozenset[str]) -> list[Block]:
    return [block for block in read_blocks(page) if block.lang in langs]


def _runs_python(page: Path) -> bool:
    return any(block.skip is None for block in _blocks(page, PYTHON))


PAGES = pages()
PAGE_IDS = [_page_id(page) for page in PAGES]
# Pages with python to run (an index page may have none).
SCRIPTS = [page for page in PAGES if _runs_python(page)]
SCRIPT_IDS = [_page_id(page) for page in SCRIPTS]


def _skips(page: Path) -> str:
    return "; ".join(f"{b.where} skipped: {b.skip}" for b in read_blocks(page) if b.skip)


def _run_page(page: Path) -> subprocess.CompletedProcess[str]:
    # A process per page: models register on the process-wide Model.metadata, and declarations
    # (@task, @consumer, configure_auth) are process-wide too, so pages must not meet.
    return subprocess.run(
        [sys.executable, str(RUNNER), str(page)],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def page_runs(
    request: pytest.FixtureRequest,
) -> Iterator[dict[Path, Future[subprocess.CompletedProcess[str]]]]:
    """The selected pages' runs, started together on as many processes as there are CPUs."""
    selected = [
        item.callspec.params["page"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_python_blocks_run"
        and hasattr(item, "callspec")
    ]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        yield {page: pool.submit(_run_page, page) for page in selected}


@pytest.mark.parametrize("page", SCRIPTS, ids=SCRIPT_IDS)
def test_python_blocks_run(
    page: Path, page_runs: dict[Path, Future[subprocess.CompletedProcess[str]]]
) -> None:
    """The page's python blocks run in order, as one module, on the embedded defaults."""
    run = page_runs.get(page)
    result = run.result() if run is not None else _run_page(page)
    assert result.returncode == 0, (
        f"{display(page)}: a python block failed (the traceback names the line)\n"
        f"{result.stdout}{result.stderr}"
    )
    if _skips(page):
        print(_skips(page))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_core_commands_exist(page: Path) -> None:
    """Every `core ...` line of the page's shell blocks names a real command and real options."""
    wrong = [
        f"{block.where} (line {line}): core {' '.join(argv)}: {error}"
        for block in _blocks(page, SHELL)
        if block.skip is None
        for line, argv in shell_commands(block)
        if (error := check_core_command(argv)) is not None
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_data_blocks_parse(page: Path) -> None:
    """json, yaml and toml blocks parse; env blocks name real settings."""
    wrong = []
    for block in _blocks(page, DATA | ENV):
        if block.skip is not None:
            continue
        if block.lang in ENV:
            wrong += [
                f"{block.where} (line {n}): {name} is no setting"
                for n, name in unknown_settings(block)
            ]
            continue
        try:
            parse_data_block(block)
        except Exception as exc:  # any parser's error: report them all
            wrong.append(f"{block.where}: {block.lang} does not parse: {exc}")
    assert not wrong, "\n".join(wrong)


def test_docs_index_lists_every_page() -> None:
    """docs/README.md links every page of docs/."""
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    present = {page.name for page in DOCS.glob("*.md")} - {"README.md"}
    assert present - linked == set(), f"pages missing from docs/README.md: {present - linked}"


def test_links_between_pages_resolve() -> None:
    """Every relative link to a .md file, in README.md and docs/, names an existing file."""
    broken = [
        f"{display(page)}: {match[1]}"
        for page in PAGES
        for match in re.finditer(r"\]\(([^)#\s:]+\.md)(#[^)]*)?\)", page.read_text("utf-8"))
        if not (page.parent / match[1]).exists()
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_configuration_page_lists_every_setting() -> None:
    """docs/configuration.md's table names every Settings field, and nothing else."""
    from core.settings import Settings

    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    named = {
        name
        for row in page.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - named == set(), f"settings missing from the table: {sorted(fields - named)}"
    assert named - fields == set(), f"the table names no setting: {sorted(named - fields)}"


def _demo_graph(output_format: str) -> str:
    result = subprocess.run(
        [sys.executable, str(RUNNER), "--graph", output_format],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_architecture_graph_is_what_the_command_prints() -> None:
    """The Mermaid picture in docs/architecture.md is today's `core container graph` output."""
    picture = [b for b in read_blocks(ARCHITECTURE) if b.lang == "mermaid"]
    assert len(picture) == 1, "docs/architecture.md should hold one mermaid block"
    printed = _demo_graph("mermaid")
    assert picture[0].code == printed, (
        "docs/architecture.md's container graph is stale: replace its mermaid block with what "
        "`.venv/bin/python tests/docs_runner.py --graph mermaid` prints"
    )


def test_architecture_text_extract_is_what_the_command_prints() -> None:
    """The text extract of the graph in docs/architecture.md is a piece of the real output."""
    extract = next(
        b for b in read_blocks(ARCHITECTURE) if b.lang == "text" and "(selected)" in b.code
    )
    assert extract.code in _demo_graph("text")


def test_runner_reads_fences_skips_and_commands(tmp_path: Path) -> None:
    """The block reader honours indented fences and skip marks; commands come out of chains."""
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n"
        "<!-- docs-test: skip (needs a real Kafka broker) -->\n"
        "```python\n"
        "x = 1\n"
        "```\n"
        "- item\n"
        "  ```bash\n"
        "  APP_MODULE=a:b core migrate --rollback && make test  # comment\n"
        "  core container graph --format dot | dot -Tsvg > g.svg\n"
        "  core topics create <topic>\n"
        "  ```\n"
        "```console\n"
        "$ core showmigrations\n"
        "core not-a-command-because-output\n"
        "```\n",
        encoding="utf-8",
    )
    first, second, third = read_blocks(page)
    assert (first.line, first.lang, first.skip) == (3, "python", "needs a real Kafka broker")
    assert second.code.startswith("APP_MODULE")
    assert list(shell_commands(second)) == [
        (8, ["migrate", "--rollback"]),
        (9, ["container", "graph", "--format", "dot"]),
        (10, ["topics", "create", "PLACEHOLDER"]),
    ]
    assert list(shell_commands(third)) == [(13, ["showmigrations"])]
    assert check_core_command(["migrate", "--rollback"]) is None
    assert check_core_command(["migrate", "--bogus"]) is not None
    assert check_core_command(["no-such-command"]) is not None


def test_runner_runs_a_page_as_one_module_and_names_the_failing_line(tmp_path: Path) -> None:
    """One namespace, top-level await, skips honoured, an empty directory and environment."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\n"
        "import asyncio, os\n"
        "assert os.listdir('.') == ['.env'] and 'DATABASE_URL' not in os.environ\n"
        "x = 1\n"
        "```\n"
        "```python\n"
        "await asyncio.sleep(0)\n"
        "x += 1\n"
        "```\n"
        "<!-- docs-test: skip (shows the skip) -->\n"
        "```python\n"
        "raise SystemExit(3)\n"
        "```\n"
        "```python\n"
        "assert x == 3, x\n"
        "```\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(RUNNER), str(page)],
        env={**os.environ, "DATABASE_URL": "postgresql+asyncpg://nowhere/db"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{page}:14: this python block failed" in result.stderr
    assert f'File "{page}", line 15' in result.stderr
    assert "AssertionError: 2" in result.stderr


def test_environment_of_the_pages_has_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages run without DATABASE_URL and the like, whatever the test run's environment."""
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://x/y")
    monkeypatch.setenv("message_broker", "kafka")
    env = clean_environment()
    assert "DATABASE_URL" not in env and "message_broker" not in env
    assert env.get("PATH") == os.environ.get("PATH")
