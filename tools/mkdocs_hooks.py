"""MkDocs hooks (``hooks:`` in mkdocs.yml): the site's home page is the README, so the two never drift.

``docs/index.md`` is a stub; at build time its Markdown is replaced by README.md's with the links rewritten for
the site: ``docs/X`` -> ``X``, ``MODEL_CARD.md`` -> the model card page, the LICENSE file named, not linked.
"""

from __future__ import annotations

import re
from pathlib import Path


def readme_for_site(text: str) -> str:
    """README.md's Markdown with its repository links turned into site links."""
    text = re.sub(r"\]\(docs/", "](", text)
    text = text.replace("](MODEL_CARD.md)", "](models/model-card.md)")
    return text.replace("[LICENSE](LICENSE)", "`LICENSE`")


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    return readme_for_site((Path(config.config_file_path).parent / "README.md").read_text())
