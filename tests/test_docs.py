"""The documentation reads as finished text: no paragraph stops mid-sentence (issue 31: getting-started.md ended
three paragraphs in the middle of a sentence, and nothing noticed)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "MODEL_CARD.md", *(ROOT / "docs").rglob("*.md")])
ENDINGS = (".", ":", "!", "?", ")", "`", "*", "|", "]", '"', ">", "'")


def paragraphs(text: str):
    """(line number, paragraph text) of the prose paragraphs: not code, tables, headings, lists, quotes, HTML,
    includes, admonitions, footnote definitions or mkdocstrings directives."""
    block, start, fenced, indented_code = [], 0, False, False
    for n, line in enumerate(text.splitlines() + [""], start=1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            block = []
            continue
        if fenced:
            continue
        if not stripped:
            if block:
                yield start, " ".join(block)
            block = []
            continue
        prose = not (line.startswith(("    ", "\t", "#", "|", "-", "*", ">", "<", "!!!", "???", ":::", "--8<--", "[^"))
                     or re.match(r"\d+\. ", stripped) or stripped.startswith(("![", "- ", "* ", "<")))
        if not block:
            if not prose:
                block = []
                continue
            start = n
        block.append(stripped)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_paragraph_stops_mid_sentence(page):
    unfinished = [f"{page.relative_to(ROOT)}:{n}: ...{p[-60:]}" for n, p in paragraphs(page.read_text())
                  if not p.endswith(ENDINGS)]
    assert not unfinished, "paragraphs that stop mid-sentence:\n" + "\n".join(unfinished)


def test_the_check_finds_a_truncated_paragraph():
    text = "A whole sentence.\n\nThe data is distributed by its authors on\n\n```\ncode without end\n```\n"
    assert [p for _, p in paragraphs(text) if not p.endswith(ENDINGS)] == ["The data is distributed by its authors on"]
