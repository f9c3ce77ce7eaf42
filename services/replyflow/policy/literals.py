"""Regexes over sets of literal strings, shared by the screen detectors and the verify checks."""

from __future__ import annotations

import re
from collections.abc import Iterable


def literal_trie(words: Iterable[str]) -> str:
    """A regex matching any of the literal ``words`` (the longest one where several start at the
    same place), nested by shared prefixes so that a position that starts none of them fails after
    one character (a flat alternation tries every word)."""
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node and len(node) == 1:
            return ""
        optional = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if optional:
            body = f"(?:{body})?"
        return body

    return build(root)
