"""The seven FER2013 emotions, in the challenge's label order (0..6)."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# Folder names seen in the per-image exports and other data sets, mapped to a FER2013 label.
_SYNONYMS = {
    "angry": 0, "anger": 0,
    "disgust": 1, "disgusted": 1,
    "fear": 2, "fearful": 2, "afraid": 2, "scared": 2,
    "happy": 3, "happiness": 3, "joy": 3,
    "sad": 4, "sadness": 4,
    "surprise": 5, "surprised": 5,
    "neutral": 6, "neutrality": 6,
}


def label_from_name(name: str) -> int:
    """Map an emotion name (any case, usual synonyms) to its FER2013 label.

    >>> label_from_name("Happiness")
    3
    """
    try:
        return _SYNONYMS[name.strip().lower()]
    except KeyError:
        raise KeyError(f"unknown emotion name {name!r}; expected one of {', '.join(EMOTIONS)}") from None


LOW_CONFIDENCE = 0.4  # a face whose top probability is under this is flagged `low_confidence` in every record
