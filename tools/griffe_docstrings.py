"""Griffe extension for the documentation site: ferkit's docstrings are written for `help()` and doctest,
so before mkdocstrings renders them as Markdown, `>>>` examples become fenced `pycon` blocks and reST roles
(:func:`x`, :class:`x`, :mod:`x`) become code spans. The source files are not touched.

Used by mkdocs.yml (`extensions:` of the python handler); not part of the package.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`~?([^`]+)`")


def _fence_doctests(text: str) -> str:
    """Wrap each run of `>>>` lines (with their `...` continuations and printed output) in a pycon fence."""
    out: list[str] = []
    in_block = False
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            if not in_block:
                if out and out[-1].strip():
                    out.append("")
                out.append("```pycon")
                in_block = True
            out.append(stripped)
        elif in_block and stripped and not stripped.startswith(">>>"):
            out.append(stripped)  # a continuation (`...`) or the printed result
        else:
            if in_block:
                out.append("```")
                in_block = False
            out.append(line)
    if in_block:
        out.append("```")
    return "\n".join(out)


class DocstringsAsMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is None:
            return
        value = _ROLE.sub(r"`\1`", obj.docstring.value)
        obj.docstring.value = _fence_doctests(value)
