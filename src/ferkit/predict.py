"""`ferkit predict` and `ferkit classify` on this machine: image files in, one result per file out, each record
written as it comes (failures included) and, where asked, an annotated copy of each image. The Ray engine for
the same records is :mod:`ferkit.batch`.

>>> from ferkit.pipeline.outputs import RecordWriter
>>> with RecordWriter(jsonl="faces.jsonl") as writer:  # doctest: +SKIP
...     for result in PhotoJob(["photos/"], writer):
...         print(result.path, [face.emotion for face in result.faces])
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

from ferkit.pipeline.face_images import SAMPLE_PHOTO
from ferkit.pipeline.outputs import RecordWriter


class NoImagesError(ValueError):
    """None of the given paths, folders or globs holds an image file."""


def image_files(paths: list[str] | None, default: Path = SAMPLE_PHOTO) -> list[Path]:
    """The image files under ``paths`` (files, folders searched recursively, globs), in order; ``[default]``
    when no path is given. Raises :class:`NoImagesError` when the paths hold none."""
    from ferkit.core.images import find_images

    files = find_images(paths) if paths else [default]
    if not files:
        raise NoImagesError("no image files found in: " + ", ".join(paths or []))
    return files


class PhotoJob:
    """Every face of every image under ``paths``, classified; iterate to run it.

    Each :class:`~ferkit.pipeline.recognize.ImageResult` is yielded after its record went to ``writer`` and, with
    ``annotate`` (a folder), its annotated PNG was written there (boxes, labels, probability bars; paths
    mirror the inputs); with ``crops`` (a folder), each face's crop as the model saw it (:func:`write_crops`), its
    path in the face's record as ``crop``. With ``group_people`` every face gets a ``person`` (faces grouped by
    :mod:`ferkit.runtime.identity` over all the photos): the records are written once every photo is seen, and
    :attr:`people` holds the per-person summary (needs SciPy). Unreadable files give a result with ``error`` set; the rest still run. ``recognizer``
    keywords go to :class:`~ferkit.pipeline.recognize.Recognizer` (``detect=False``: each whole image is one face).

    Raises :class:`NoImagesError` (no image under ``paths``), :class:`~ferkit.weights.WeightsError` (a model
    that cannot be loaded) or KeyError (an unknown detector) when built, before any image is read.
    """

    def __init__(self, paths: list[str] | None, writer: RecordWriter, *, default: Path = SAMPLE_PHOTO,
                 annotate: Path | None = None, progress: bool = False, threads: int = 0, crops: Path | None = None,
                 group_people: bool = False, **recognizer):
        from ferkit.runtime.onnx_io import cpu_count
        from ferkit.pipeline.recognize import Recognizer

        self.files = image_files(paths, default)
        self.recognizer = Recognizer(threads=1, **recognizer)
        self.workers = threads or cpu_count()
        self.writer, self.annotate, self.progress, self.crops = writer, annotate, progress, crops
        self.identity = None
        self.people: list[dict] = []  # with group_people: the per-person summary, once the job has run
        self._by_person: dict[int, list] = {}  # person -> [(path, probabilities) of each face]
        if group_people:
            from ferkit.runtime.identity import IdentityEncoder, need_scipy

            need_scipy()
            self.identity = IdentityEncoder()

    @property
    def labels(self) -> list[str]:
        return self.recognizer.labels

    def __iter__(self) -> Iterator:
        annotate = self.annotate
        grouping = self.identity is not None
        results = self.recognizer.predict_paths(self.files, keep_images=annotate is not None or grouping,
                                                workers=self.workers, keep_crops=True)
        if self.progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(self.files), unit="image", file=sys.stderr, disable=None, leave=False)
        import cv2

        from ferkit.pipeline.annotate import annotate as draw, annotated_paths

        if annotate is not None:
            targets = annotated_paths(annotate, self.files)
        crop_bases = annotated_paths(self.crops, self.files) if self.crops is not None else None
        held, features = [], []  # group_people: records wait for the persons, known once every photo is seen
        if grouping:
            from ferkit.runtime.identity import crops as identity_crops
        for index, (result, rgb, crops) in enumerate(results):
            if rgb is not None and annotate is not None:
                targets[index].parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(targets[index]), draw(rgb, result.faces, self.labels))
            record = result.to_dict()
            if crop_bases is not None:
                for face, path in zip(record["faces"], write_crops(crop_bases[index], crops)):
                    face["crop"] = str(path)
            if grouping:
                if result.faces:
                    features.append(self.identity.features(identity_crops(rgb, result.faces)))
                held.append(record)
            else:
                self.writer.write(record)
            yield result
        if grouping:
            self._group(held, features)

    def _group(self, records: list[dict], features: list) -> None:
        """Give every face of ``records`` its ``person`` (:func:`ferkit.runtime.identity.group` of all faces' features),
        write the records and keep the per-person summary in :attr:`people`."""
        import numpy as np

        from ferkit.runtime.identity import group, summarize_people

        faces = [(r, f) for r in records for f in r["faces"]]
        persons = group(self.identity.normalise(np.concatenate(features))) if features else []
        by_person: dict[int, list] = {}
        for (record, face), person in zip(faces, persons):
            face["person"] = int(person)
            by_person.setdefault(int(person), []).append((record["path"], face["probabilities"]))
        for record in records:
            self.writer.write(record)
        self.people = summarize_people(by_person)
        self._by_person = by_person

    def person_probabilities(self) -> dict[str, list[dict]]:
        """After a run with ``group_people``: ``{"person N": [each face's probabilities]}`` (for
        :func:`ferkit.pipeline.charts.distribution`)."""
        return {f"person {k}": [p for _, p in v] for k, v in sorted(self._by_person.items())}


def crop_paths(base: Path, count: int) -> list[Path]:
    """Where the ``count`` face crops of one input go: ``base`` (its place in the crops folder, as
    :func:`ferkit.pipeline.annotate.annotated_paths` gives it) with ``_face0.png``, ``_face1.png``... (the face's index in
    its record)."""
    return [base.with_name(f"{base.stem}_face{i}.png") for i in range(count)]


def write_crops(base: Path, crops) -> list[Path]:
    """Write one input's face crops (F, size, size) grey or (F, size, size, 3) RGB uint8, as the model saw them,
    as PNG files (:func:`crop_paths`); returns their paths."""
    from ferkit.pipeline.outputs import save_crop

    return [save_crop(path, crop) for path, crop in zip(crop_paths(base, len(crops)), crops)]
