"""The fenced code blocks of the README and of docs/*.md, for the documentation tests.

A shell block (```sh, ```bash or ```console) is run by tests/docs/test_examples.py
unless HTML comments on the lines just before its fence say otherwise:
`<!-- not-run: REASON -->`, `<!-- slow: REASON -->` (run with EVO_DOCS_SLOW=1) or
`<!-- needs: PROGRAM-OR-PATH -->` (skipped when missing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = ("sh", "bash", "console")
MARKER_KINDS = ("not-run", "slow", "needs")
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
COMMENT = re.compile(r"^<!--(.*)-->\s*$")
MARKER = re.compile(r"^\s*([\w-]+):\s*(.*?)\s*$")


def pages() -> list[str]:
    """README.md first (the tour every page builds on), then docs/*.md, as repo paths."""
    return ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and the comments before it."""

    page: str
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    comments: tuple[str, ...]  # the HTML comments on the lines just before the fence

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def shell(self) -> bool:
        return self.language in SHELL

    def markers(self) -> list[tuple[str, str]]:
        """(kind, value) of each comment; kind "" for a comment that is not `kind: value`."""
        found = []
        for comment in self.comments:
            match = MARKER.match(comment)
            found.append((match.group(1), match.group(2)) if match else ("", comment.strip()))
        return found

    def script(self) -> str:
        """The bash script the block stands for: the whole text, or for `console` the
        commands after `$ ` (with their backslash continuations), outputs left out."""
        if self.language != "console":
            return self.text
        commands: list[str] = []
        continuing = False
        for line in self.text.splitlines():
            if continuing:
                commands[-1] += "\n" + line
            elif line.startswith("$ "):
                commands.append(line[2:])
            else:
                continue
            continuing = line.endswith("\\")
        return "\n".join(commands) + "\n"


def parse(page: str) -> list[Block]:
    """The top-level fenced blocks of `page` (a path relative to the repository root)."""
    lines = (ROOT / page).read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((j for j in range(index + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        assert end is not None, f"{page}:{index + 1}: fence never closed"
        comments = []
        before = index - 1
        while before >= 0 and (comment := COMMENT.match(lines[before])):
            comments.insert(0, comment.group(1))
            before -= 1
        blocks.append(Block(page, index + 1, opening.group(1), "\n".join(lines[index + 1:end]),
                            tuple(comments)))
        index = end + 1
    return blocks


def shell_blocks() -> list[Block]:
    """Every shell block of every page, pages in `pages()` order, blocks in page order."""
    return [block for page in pages() for block in parse(page) if block.shell]
