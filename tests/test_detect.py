"""Face detection at the scales an image needs (issue 24, item 8): faces from ~20 px wide up to the whole
frame are found at the default settings, once each, in the original image's pixels."""

import cv2
import numpy as np
import pytest
from PIL import Image

from ferkit.pipeline.face_images import SAMPLE_PHOTO
from ferkit.runtime.detect import create_detector, plan_scales
from ferkit.analysis.photos import iou


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(SAMPLE_PHOTO).convert("RGB"))


@pytest.fixture(scope="module")
def reference(photo):
    """The sample photo's one face as the detector finds it at the photo's own size (512 px)."""
    faces = create_detector("centerface", max_side=512).detect(photo)
    assert len(faces) == 1
    return faces[0]


def group_picture(photo, reference, width=60):
    """A 1600x1200 picture of 12 copies of the sample face, ``width`` px wide, on a plain background (every
    other one mirrored); some straddle the finer pass's tile edges (x = 320 and 1280). Gives the picture and
    each copy's expected box and landmarks, in its pixels."""
    x, y, w, h = reference.box
    k = width / w
    side = round(2 * w)  # a square crop, twice the face's width, around its centre
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    tile = cv2.resize(photo[y0:y0 + side, x0:x0 + side], None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    t = tile.shape[0]
    picture = np.full((1200, 1600, 3), 200, np.uint8)
    expected = []
    for row, py in enumerate((250, 600, 950)):
        for col, px in enumerate((320, 640, 960, 1280)):
            mirror = (row + col) % 2 == 1
            left, top = px - t // 2, py - t // 2
            picture[top:top + t, left:left + t] = tile[:, ::-1] if mirror else tile

            def place(u, v):  # a point of the 512-px photo to this copy
                u = (u - x0) * k
                return (left + (t - u if mirror else u), top + (v - y0) * k)

            (bx0, by0), (bx1, by1) = place(x, y), place(x + w, y + h)
            marks = [place(u, v) for u, v in reference.landmarks]
            if mirror:  # image-left eye first, and the mouth corners too
                marks = [marks[1], marks[0], marks[2], marks[4], marks[3]]
            expected.append(((min(bx0, bx1), by0, abs(bx1 - bx0), by1 - by0), marks))
    return picture, expected


def test_plan_scales():
    assert plan_scales(480, 640, max_side=320, scales="single") == [0.5]
    assert plan_scales(300, 400, max_side=320) == [0.8]  # small enough: one pass finds 20-px faces
    coarse, fine = plan_scales(1200, 1600, max_side=320)
    assert coarse == 0.2 and 20 * fine >= 16  # a 20-px face is >= 16 px where the finer pass sees it
    big = plan_scales(4096, 4096, max_side=4096)  # raised max_side: a coarse pass for faces the frame's size
    assert big[0] == 320 / 4096 and big[-1] == 1.0 and len(big) == 3
    assert all(b / a <= 12 for a, b in zip(big, big[1:]))
    with pytest.raises(ValueError, match="scales must be one of auto, single"):
        plan_scales(100, 100, max_side=320, scales="pyramid")
    with pytest.raises(ValueError, match="scales must be one of"):
        create_detector("centerface", scales="many")


@pytest.mark.parametrize("max_side", [320, 4096])
def test_a_face_as_large_as_the_frame_is_boxed_whole(photo, reference, max_side):
    """The sample photo upscaled to 4096x4096 (a ~700-px face): at max_side 4096 alone CenterFace boxed only
    an inner part of it (IoU ~0.3 with the whole face)."""
    big = cv2.resize(photo, (4096, 4096), interpolation=cv2.INTER_LINEAR)
    faces = create_detector("centerface", max_side=max_side).detect(big)
    assert len(faces) == 1
    whole = tuple(v * 8 for v in reference.box)
    assert iou(faces[0].box, whole) > 0.5, (faces[0].box, whole)


def test_a_group_of_small_faces_is_found_at_the_default_settings(photo, reference):
    from ferkit.pipeline.recognize import Recognizer

    picture, expected = group_picture(photo, reference)
    result = Recognizer().predict(picture, color="RGB")
    assert len(result.faces) >= 10
    assert create_detector("centerface", max_side=320, scales="single").detect(picture) == []  # the old way
    for face in result.faces:  # each one on a pasted face, none twice
        assert max(iou(face.box, box) for box, _ in expected) > 0.5
    ious = [iou(a.box, b.box) for i, a in enumerate(result.faces) for b in result.faces[:i]]
    assert max(ious) < 0.1


def test_boxes_and_landmarks_are_in_the_original_pixels(photo, reference):
    picture, expected = group_picture(photo, reference)
    faces = create_detector("centerface", max_side=320).detect(picture)
    assert len(faces) >= 10
    for face in faces:
        box, marks = max(expected, key=lambda e: iou(face.box, e[0]))
        assert iou(face.box, box) > 0.5
        error = np.abs(np.array(face.landmarks) - np.array(marks)).max()
        assert error < 0.15 * box[2], (face.landmarks, marks)
        assert face.landmarks[0][0] < face.landmarks[1][0]  # image-left eye first


def test_a_face_both_scales_find_is_reported_once(photo, reference):
    """A 200-px face in a 1600x1200 picture is 40 px for the coarse pass and 160 px for the finer one: both
    keep it, the merge reports it once, with the same box as a single pass at the finer scale."""
    picture, _ = group_picture(photo, reference, width=200)
    picture = np.ascontiguousarray(picture[:, :800])  # the first two columns: faces 320 px apart
    faces = create_detector("centerface", max_side=320).detect(picture)
    coarse = create_detector("centerface", max_side=320, scales="single").detect(picture)
    fine = create_detector("centerface", max_side=640, scales="single").detect(picture)
    assert len(coarse) == len(fine) == len(faces) == 6
    for face in faces:
        assert max(iou(face.box, f.box) for f in coarse) > 0.5 and max(iou(face.box, f.box) for f in fine) > 0.5


def test_scales_reach_the_detector_and_a_detector_without_them_still_loads(photo):
    from ferkit.runtime.detect import _DETECTORS, register_detector
    from ferkit.pipeline.recognize import Recognizer

    rec = Recognizer()
    assert (rec.detector.scales, rec.detector.max_side) == ("auto", 320)
    assert Recognizer(scales="single", max_side=640).detector.scales == "single"
    made = []

    def old_style(*, threads=1, max_side=640):  # registered before detectors took `scales`
        made.append(max_side)
        return create_detector("centerface", threads=threads, max_side=max_side)

    register_detector("old-style-test", old_style)
    try:
        assert Recognizer(detector="old-style-test", scales="single").locate(photo)
        assert made == [320]
    finally:
        _DETECTORS.pop("old-style-test")


def test_video_detects_at_one_scale_unless_asked(tmp_path, monkeypatch):
    from ferkit import video

    made = []

    class Spy:
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("scales"))
            raise RuntimeError("enough")

    monkeypatch.setattr("ferkit.pipeline.recognize.Recognizer", Spy)
    with pytest.raises(RuntimeError, match="enough"):
        next(video.stream(str(tmp_path / "none.mp4")))
    assert made == ["single"]


def test_a_part_of_a_large_face_boxed_by_a_finer_pass_is_dropped():
    from ferkit.runtime.detect import _drop_parts

    boxes = np.array([[0, 0, 100, 120], [30, 30, 50, 50], [90, 90, 140, 140], [200, 0, 220, 20]], float)
    assert _drop_parts(boxes, np.array([0, 1, 1, 1]), np.arange(4)).tolist() == [0, 2, 3]  # the eye inside goes
    assert _drop_parts(boxes, np.array([1, 1, 1, 1]), np.arange(4)).tolist() == [0, 1, 2, 3]  # one pass: kept


def test_int8_detector_is_the_default_and_finds_what_fp32_finds(photo, reference):
    """Issue 25: the default detector is CenterFace quantized to int8 (tools/quantize_detector.py), 4x smaller; on
    the sample photo and on a picture of 12 faces of 60 px it finds the same faces as fp32, boxes within IoU 0.8,
    landmarks within 8% of the face's width."""
    from ferkit.runtime.detect import DETECTORS_DIR, list_detectors
    from ferkit.pipeline.recognize import Recognizer
    from ferkit.weights import DEFAULT_DETECTOR

    assert DEFAULT_DETECTOR == "centerface-int8" and {"centerface", "centerface-int8"} <= set(list_detectors())
    assert Recognizer().detector.precision == "int8" and create_detector().name == "centerface-int8"
    assert (DETECTORS_DIR / "centerface-int8.onnx").stat().st_size < 0.35 * (DETECTORS_DIR / "centerface.onnx").stat().st_size
    picture, _ = group_picture(photo, reference)
    for image, max_side in ((photo, 512), (picture, 320)):
        fp32 = create_detector("centerface", max_side=max_side).detect(image)
        int8 = create_detector("centerface-int8", max_side=max_side).detect(image)
        assert len(int8) == len(fp32) >= 1
        for f in fp32:
            g = max(int8, key=lambda g: iou(f.box, g.box))
            assert iou(f.box, g.box) > 0.8
            assert np.abs(np.array(f.landmarks) - np.array(g.landmarks)).max() < 0.08 * f.box[2]
    with pytest.raises(ValueError, match="precision must be one of"):
        create_detector("centerface", precision="int4")
