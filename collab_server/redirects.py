"""Where a login may send the browser afterwards: only to a path of this site."""

from __future__ import annotations

import urllib.parse

_MAX_DECODES = 3


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a same-origin path, else ``default``.

    Accepted: an absolute path (``/a/b?c#d``). Refused: anything with a
    scheme or host (``https://x``, ``https:///x``, ``//x``), backslashes
    (``/\\x`` is ``//x`` to browsers), control characters (browsers drop tabs and newlines),
    and any of these hidden behind percent-encoding (checked after decoding
    up to three times).
    """
    if not target or len(target) > 2048:
        return default
    text = target
    for _ in range(_MAX_DECODES + 1):
        if not _plain_path(text):
            return default
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            return target
        text = decoded
    return default


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//"):
        return False
    # Browsers drop tabs and newlines inside URLs and read "\\" as "/".
    if "\\" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    parts = urllib.parse.urlsplit(text)
    return not parts.scheme and not parts.netloc
