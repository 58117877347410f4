"""Text normalization shared by every matcher: the minimal form here
(NFKC, strip, collapse spaces). The FAQ matcher adds its own on top."""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def basic(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text or "")).strip()
