"""People in zero-example search: OpenCV's shipped person and face detectors as concepts.

ImageNet has no person class, so the frame encoder's 1,000 classes cannot find the subject of
most real captions. OpenCV 4.x (``opencv-python-headless``) ships detectors with their
weights: Haar cascades (``cv2.data.haarcascades``) and the HOG + linear SVM pedestrian
detector (``cv2.HOGDescriptor_getDefaultPeopleDetector``). At index time each concept frame
(224 px) gets ``PEOPLE_CONCEPTS`` indicators (0 or 1):

- ``face``: a frontal face (Haar, ``haarcascade_frontalface_default``);
- ``person``: a face or a full-body person (HOG, SVM margin >= ``HOG_WEIGHT``);
- ``people``: two or more of them that do not overlap (two people, a group).

A clip's score per concept is the top-3 mean over its frames (as for the class
probabilities, :mod:`mcsan.search.concept_index`): 1 when three or more frames show it.

What the detectors cannot do, said plainly: tell a man from a woman or a child from an
adult (no such classifier ships), or count a crowd (small faces are missed); such words
map to ``person`` / ``people`` with a note (:mod:`mcsan.search.concepts`). They miss people
seen from behind, in profile or far away. Measured on clips of 20 scikit-image photographs
(``tests/search``): the frontal face cascade finds the astronaut's face in 7 of 8 frames and
nothing in the 19 others; the upper-body cascade fired on coins, the moon and a tissue
sample and the profile cascade on one frame of the cameraman at 3x the frontal cascade's
cost, so neither is used; HOG's best margin on a non-person was 0.75 (a book page).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from mcsan.core.errors import ConfigError
from mcsan.data.video.backbone import LOGITS_STREAM, get_backbone
from mcsan.search.concepts import PEOPLE_CONCEPTS

PEOPLE_STREAM = "people"
"""Per frame, one 0/1 indicator per ``PEOPLE_CONCEPTS`` (person, people, face), in order."""
DETECTOR_NAME = "OpenCV 4 Haar frontal-face cascade + HOG people detector"
FACE_NEIGHBOURS = 6
"""minNeighbors of the face cascade: 6 keeps the astronaut's face and drops the texture hits
that 3 gives on the coins, page and tissue photographs."""
FACE_SCALE = 1.2
"""Scale step of the cascade: the same detections as 1.1 on the photographs, 1.6x faster."""
HOG_WEIGHT = 1.0
"""Minimum SVM margin of a HOG person (non-persons reached 0.75)."""
MIN_FACE = 20


@functools.lru_cache(maxsize=1)
def _detectors() -> dict[str, Any]:
    """The cascades and the HOG detector, loaded once (ConfigError naming the fix)."""
    from mcsan.core.extras import require

    cv2 = require("cv2", "people concepts in `mcsan index`")
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise ConfigError(
            f"OpenCV {cv2.__version__} ships no Haar cascades (cv2.data.haarcascades; they "
            "were dropped in 5.x); pip install 'opencv-python-headless>=4.8,<5'"
        )
    cascade = cv2.CascadeClassifier(f"{folder}haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise ConfigError(f"{folder}haarcascade_frontalface_default.xml: cannot be read; "
                          "reinstall opencv-python-headless 4.x")  # fmt: skip
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return {"cv2": cv2, "face": cascade, "hog": hog}


def _overlaps(a: tuple, b: tuple) -> bool:
    """Whether box ``b``'s centre lies inside box ``a`` or the other way round."""

    def inside(box: tuple, other: tuple) -> bool:
        cx, cy = other[0] + other[2] / 2, other[1] + other[3] / 2
        return box[0] <= cx <= box[0] + box[2] and box[1] <= cy <= box[1] + box[3]

    return inside(a, b) or inside(b, a)


def detect_frame(frame: np.ndarray) -> np.ndarray:
    """The ``PEOPLE_CONCEPTS`` indicators (float32 0/1) of one uint8 RGB frame (H, W, 3)."""
    found = _detectors()
    cv2 = found["cv2"]
    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY))
    faces = [tuple(b) for b in found["face"].detectMultiScale(
        gray, FACE_SCALE, FACE_NEIGHBOURS, minSize=(MIN_FACE, MIN_FACE))]
    rects, weights = found["hog"].detectMultiScale(gray, winStride=(8, 8), padding=(8, 8),
                                                   scale=1.05)  # fmt: skip
    weights = np.asarray(weights, np.float32).reshape(-1)
    bodies = [tuple(r) for r, w in zip(rects, weights, strict=True) if w >= HOG_WEIGHT]
    persons: list[tuple] = []
    for box in [*faces, *bodies]:  # one person per face or body that overlaps no other
        if not any(_overlaps(box, kept) for kept in persons):
            persons.append(box)
    return np.array([len(persons) >= 1, len(persons) >= 2, len(faces) >= 1], np.float32)


class ConceptFrameEncoder:
    """The concept frames' encoder: the backbone's ImageNet logits plus the ``people`` stream
    (a :class:`mcsan.data.video.backbone.FrameEncoder` for ``extract_features``)."""

    def __init__(self, backbone: str, batch_size: int = 64) -> None:
        """``backbone`` gives the logits stream; the detectors are loaded now."""
        _detectors()
        self.inner = get_backbone(backbone, [LOGITS_STREAM], batch_size=batch_size)
        self.name = f"{self.inner.name}+people"

    def stream_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-frame shapes: the logits and the detector's indicators."""
        return {**self.inner.stream_shapes(), PEOPLE_STREAM: (len(PEOPLE_CONCEPTS),)}

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Both streams of uint8 frames (N, H, W, 3)."""
        out = self.inner.encode(frames)
        rows = [detect_frame(frame) for frame in frames]
        out[PEOPLE_STREAM] = (np.stack(rows) if rows
                              else np.zeros((0, len(PEOPLE_CONCEPTS)), np.float32))  # fmt: skip
        return out
