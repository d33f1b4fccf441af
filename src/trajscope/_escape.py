"""Text from a run, made safe for where it is shown.

A run directory is untrusted input (docs/format.md, "What a run can do"): its names, keys,
config values and the error messages that quote its files may hold markup or script.
Every string that comes from a run passes through one of these before it meets markdown
(viser renders markdown with raw HTML, unsanitised), HTML or a terminal:

- :func:`md`: text that markdown and HTML show as exactly these characters;
- :func:`md_lines`: the same for several lines, joined with markdown line breaks;
- :func:`html`: text for an HTML element or attribute;
- :func:`plain`: text for a terminal, control characters (escape sequences) and bidi
  overrides made visible.
"""

from __future__ import annotations

import html as _html
import string
from typing import Any

_PUNCT = frozenset(string.punctuation)
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
"""Bidirectional-text controls: an override (U+202E) shows the text after it reversed."""
_CONTROL = {
    c: " " if c in "\t\n\r\x0b\x0c\x85\u2028\u2029" else ""
    for c in map(chr, [*range(32), *range(127, 160), 0x2028, 0x2029, *_BIDI])
}
"""C0 and C1 controls (U+009B starts an escape sequence in some terminals), line and
paragraph separators, and the bidi controls: dropped from markdown and HTML, ``?`` in a
terminal."""
MAX_CHARS = 2000
"""The longest piece of run text shown at once; the rest is cut (``…``)."""


def _cut(text: Any) -> str:
    s = str(text)
    return s if len(s) <= MAX_CHARS else s[:MAX_CHARS] + "…"


def md(text: Any) -> str:
    """``text`` as markdown that renders as exactly its characters on one line: every ASCII
    punctuation character backslash-escaped (so no HTML tag, link, emphasis, table cell or
    code span can start), line breaks as spaces, other control characters dropped."""
    out = []
    for ch in _cut(text):
        if ch in _PUNCT:
            out.append("\\" + ch)
        elif ch in _CONTROL:
            out.append(_CONTROL[ch])
        else:
            out.append(ch)
    return "".join(out)


def md_lines(text: Any) -> str:
    """Several lines of ``text``, each escaped with :func:`md`, joined by markdown line
    breaks."""
    return "  \n".join(md(line) for line in _cut(text).splitlines())


def html(text: Any) -> str:
    """``text`` for HTML element content or a quoted attribute value (control and bidi
    characters dropped, line breaks kept)."""
    return _html.escape("".join(ch for ch in _cut(text) if ch in "\t\n" or ch not in _CONTROL), quote=True)


def plain(text: Any) -> str:
    """``text`` for a terminal: control characters (an escape sequence could rewrite the
    screen or the window title) shown as ``?``."""
    return "".join("?" if ch in _CONTROL and ch not in "\t\n" else ch for ch in str(text))
