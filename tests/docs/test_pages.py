"""The README stays a quick start, every docs page is in the site's navigation, every
shell block that is not run says why, and the CLI reference renders every command."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from tests.docs.blocks import MARKER_KINDS, ROOT, pages, parse

README_MAX_LINES = 220
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_quick_start() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "make test" in text and ". .venv/bin/activate" in text


def test_readme_links_resolve() -> None:
    targets = [t for t in LINK.findall((ROOT / "README.md").read_text()) if "://" not in t]
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing


def test_every_docs_page_is_in_the_nav() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def files(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        items = nav.values() if isinstance(nav, dict) else nav
        return [name for item in items for name in files(item)]

    in_nav = files(config["nav"])
    on_disk = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert sorted(in_nav) == on_disk


@pytest.mark.parametrize("page", pages())
def test_blocks_are_classified(page: str) -> None:
    """Markers only before shell blocks, each a known kind with a reason; commands
    (`$ ...`, `evo ...`) only in shell blocks, where the tests see them."""
    for block in parse(page):
        for kind, value in block.markers():
            assert block.shell, f"{block.id}: marker on a {block.language or 'plain'} block"
            assert kind in MARKER_KINDS, f"{block.id}: unknown marker {kind or value!r}"
            assert value, f"{block.id}: {kind} without a reason"
        if not block.shell:
            first = block.text.lstrip().splitlines()[0] if block.text.strip() else ""
            assert not first.startswith(("$ ", "evo ")), f"{block.id}: a command outside sh/console"


@pytest.mark.parametrize("page", pages())
def test_python_examples_import_what_exists(page: str) -> None:
    """Python blocks parse, and every name they import from evo or genomes exists."""
    for block in parse(page):
        if block.language != "python":
            continue
        tree = ast.parse(block.text, filename=block.id)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] in ("evo", "genomes"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{block.id}: {node.module}.{alias.name}"


def test_cli_reference_has_every_command() -> None:
    path = Path(ROOT / "docs" / "hooks" / "cli_reference.py")
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    from evo.cli import COMMANDS

    page = hook.on_page_markdown(f"# CLI\n\n{hook.MARKER}\n", None, None, None)
    assert hook.MARKER not in page
    for name in ["evo", *(f"evo {command}" for command in COMMANDS), "evo genome show"]:
        assert f"## `{name}`\n" in page, name
    commands = dict(hook.command_parsers())
    assert commands["evo run"].format_help().splitlines()[0] in page
