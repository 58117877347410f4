"""The pieces both small learned models share (faq/intent_model.py for intents and
priorities, handlers/groups/mod_model.py for moderation): character n-grams of a
text and the softmax that turns class scores into probabilities."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def char_ngrams(text: str, sizes: Iterable[int]) -> Iterator[str]:
    """Every run of n characters of `text`, for each n in `sizes` (shortest first)."""
    for n in sizes:
        for i in range(len(text) - n + 1):
            yield text[i:i + n]


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities from scores (shifted by the maximum first: no overflow)."""
    p = np.exp(z - z.max())
    return p / p.sum()
