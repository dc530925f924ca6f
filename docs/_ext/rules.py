"""A horizontal rule inside a notebook's Markdown output (nbchat's footers and tool blocks use
them) sits inside an output container, where docutils allows no transition: render it as
the HTML rule it is in Jupyter."""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform


class NestedRules(SphinxTransform):
    default_priority = 800  # before docutils' own check of transitions (830)

    def apply(self, **kwargs: Any) -> None:
        for rule in list(self.document.findall(nodes.transition)):
            if not isinstance(rule.parent, (nodes.document, nodes.section)):
                rule.replace_self(nodes.raw("", "<hr/>", format="html"))


def setup(app: Any) -> dict[str, Any]:
    app.add_transform(NestedRules)
    return {"parallel_read_safe": True}
