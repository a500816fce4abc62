"""Text from outside, made safe to show on a terminal.

Certificate fields, inventory values, ticket texts and server answers are
written by whoever controls an endpoint, a file or a ticket. Shown as they are,
an escape sequence in a certificate's CN clears the operator's screen or
rewrites what the table says, and a bidirectional override makes a name read
backwards. So every such text is shown with its control characters removed
(and, by the callers, as plain text, never as console markup).
"""

from __future__ import annotations

import re
import unicodedata

# Bidirectional embeddings, overrides and isolates, and the Arabic letter mark:
# invisible, yet they reorder what is shown around them.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BREAKS = frozenset("\n\r\t\u2028\u2029\x85")
# In JSON, control characters below U+0020 are always escaped; these are not
# (with ensure_ascii=False) and terminals act on them: C1 controls and bidi marks.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _unsafe(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) == "Cc"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` without control characters; line breaks kept when `lines`, else made spaces."""
    if text.isprintable():  # no control, format or separator character at all
        return text
    out = []
    for char in text.replace("\r\n", "\n"):
        if char in _BREAKS:
            if lines:
                out.append("\t" if char == "\t" else "\n")
            else:
                out.append(" ")
        elif not _unsafe(char):
            out.append(char)
    return "".join(out)


def json_for_terminal(document: str) -> str:
    """A JSON document with the characters terminals act on written as \\u escapes.

    The data is unchanged for any JSON reader; only its spelling changes.
    """
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", document)
