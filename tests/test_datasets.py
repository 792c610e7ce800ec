"""Tests of training.datasets on tiny fixtures written in the real datasets' file formats."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

import dataset_fixtures as fx
from training.datasets import common
from training.datasets import (
    DATASETS,
    AFLW2000Dataset,
    AnnotatedImage,
    AnnotationError,
    COFWDataset,
    FRLDataset,
    IBUG300VWDataset,
    IBUG300WDataset,
    MERLRAVDataset,
    WFLWDataset,
    open_dataset,
    parse_pts,
    parse_tem,
    read_image,
)
from training.datasets.frl import frl_layout_indices, parse_tem_template_lines

# ---------------------------------------------------------------- .pts / 300W


def test_parse_pts_reads_file_coordinates(tmp_path: Path) -> None:
    points = fx.ibug68_points()
    path = fx.write_pts(tmp_path / "a.pts", points)
    assert path.read_text().startswith("version: 1\nn_points:  68\n{\n")
    np.testing.assert_allclose(parse_pts(path), points)


def test_parse_pts_tolerates_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.pts"
    path.write_bytes(b"version: 1\r\nn_points:  2\r\n{\r\n1 2\r\n3.5 4.25\r\n}")
    np.testing.assert_allclose(parse_pts(path), [[1, 2], [3.5, 4.25]])


def test_300w_reader_converts_one_based_pts(tmp_path: Path) -> None:
    truth = fx.make_300w(tmp_path)
    ds = IBUG300WDataset(tmp_path)
    assert len(ds) == 3
    by_stem = {str(s.extras["annotation_path"].relative_to(tmp_path).with_suffix("")): s for s in ds}
    assert set(by_stem) == set(truth)
    for stem, points in truth.items():
        sample = by_stem[stem]
        assert sample.landmarks.dtype == np.float32 and sample.landmarks.shape == (68, 2)
        np.testing.assert_allclose(sample.landmarks, points - 0.5, atol=1e-5)
        assert sample.layout == "ibug68" and sample.semantics == "ibug2d"
        assert sample.visibility.shape == (68,) and (sample.visibility == 1).all()
        assert sample.box is None and sample.frame_index is None
        assert sample.image_path.stem == Path(stem).name
    # The .pts point (1, 1) is the centre of the top-left pixel: (0.5, 0.5) in our convention.
    np.testing.assert_allclose(by_stem["helen/trainset/100032540_1"].landmarks[0], [0.5, 0.5])
    image = by_stem["300W/01_Indoor/indoor_001"].load_image()
    assert image.shape == (fx.H, fx.W, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (255, 0, 0)  # red stays red: BGR was converted to RGB


def test_300w_reader_skips_pts_without_image(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fx.make_300w(tmp_path)
    fx.write_pts(tmp_path / "orphan" / "lonely.pts", fx.ibug68_points())
    with caplog.at_level(logging.WARNING):
        ds = IBUG300WDataset(tmp_path)
    assert len(ds) == 3
    assert "lonely.pts" in caplog.text


def test_300w_indexing(tmp_path: Path) -> None:
    fx.make_300w(tmp_path)
    ds = IBUG300WDataset(tmp_path)
    assert ds[-1].image_path == ds[2].image_path
    with pytest.raises(IndexError):
        ds[3]
    assert [s.image_path for s in ds] == [ds[i].image_path for i in range(len(ds))]


def test_300w_empty_or_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no .pts"):
        IBUG300WDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        IBUG300WDataset(tmp_path / "nope")


def _pts_text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def test_malformed_pts_bad_point_line(tmp_path: Path) -> None:
    rows = [f"{x} {y}" for x, y in fx.ibug68_points()]
    rows[1] = "abc 12"  # file line 5
    path = tmp_path / "x.pts"
    path.write_text(_pts_text(["version: 1", "n_points:  68", "{", *rows, "}"]))
    with pytest.raises(AnnotationError) as err:
        parse_pts(path)
    assert isinstance(err.value, ValueError)
    assert str(err.value) == f"{path} line 5: expected 2 numbers, got 'abc 12'"
    assert err.value.line == 5 and err.value.path == path


def test_malformed_pts_count_mismatch(tmp_path: Path) -> None:
    rows = [f"{x} {y}" for x, y in fx.ibug68_points()[:67]]
    path = tmp_path / "short.pts"
    path.write_text(_pts_text(["version: 1", "n_points:  68", "{", *rows, "}"]))
    with pytest.raises(AnnotationError, match=r"short\.pts line 71: n_points says 68 but found 67 points"):
        parse_pts(path)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["version: 1", "n_points:  1", "1 2", "}"], r"line 3: expected a 'key: value' header line"),
        (["version: 1", "n_points:  1", "{", "1 2"], r"line 4: no '}' closing"),
        (["version: 1", "{", "1 2", "}"], r"line 2: the header has no n_points"),
        (["version: 1", "n_points:  many", "{", "}"], r"line 2: n_points is not an integer"),
        (["version: 1", "n_points:  1", "{", "1 2 3", "}"], r"line 4: expected 2 numbers, got '1 2 3'"),
        (["version: 1", "n_points:  1", "{", "1 nan", "}"], r"line 4: point is not finite"),
        (["version: 1", "n_points:  1", "{", "1 2", "}", "junk"], r"line 6: unexpected text after"),
    ],
)
def test_malformed_pts_structure(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "bad.pts"
    path.write_text(_pts_text(lines))
    with pytest.raises(AnnotationError, match=r"bad\.pts " + message):
        parse_pts(path)


def test_300w_rejects_wrong_point_count(tmp_path: Path) -> None:
    fx.write_pts(tmp_path / "a.pts", fx.ibug68_points()[:39])
    fx.write_image(tmp_path / "a.jpg")
    ds = IBUG300WDataset(tmp_path)
    with pytest.raises(AnnotationError, match=r"a\.pts: expected 68 points \(ibug68\), found 39"):
        ds[0]


# ---------------------------------------------------------------- 300VW


def test_300vw_frames(tmp_path: Path) -> None:
    truth = fx.make_300vw(tmp_path, n_frames=5)
    ds = IBUG300VWDataset(tmp_path)
    assert len(ds) == 5
    for k, sample in enumerate(ds):
        assert sample.frame_index == k and sample.extras["frame_number"] == k + 1
        assert sample.extras["clip"] == "001"
        assert sample.image_path == tmp_path / "001" / "vid.avi"
        np.testing.assert_allclose(sample.landmarks, truth[k + 1] - 0.5, atol=1e-5)
        assert sample.layout == "ibug68" and sample.semantics == "ibug2d"
    # Frames decode lazily, in order and out of order alike (MJPG is lossy: compare the mean grey).
    for k in [0, 1, 2, 3, 4, 2, 0, 4, 1]:
        frame = ds[k].load_image()
        assert frame.shape == (fx.H, fx.W, 3) and frame.dtype == np.uint8
        assert abs(frame.mean() - fx.frame_value(k)) < 4, k


def test_300vw_annotation_past_the_video_end(tmp_path: Path) -> None:
    fx.make_300vw(tmp_path, n_frames=3)
    fx.write_pts(tmp_path / "001" / "annot" / "000009.pts", fx.ibug68_points())
    ds = IBUG300VWDataset(tmp_path)
    with pytest.raises(OSError, match=r"vid\.avi: cannot read frame 8"):
        ds[-1].load_image()
    assert abs(ds[0].load_image().mean() - fx.frame_value(0)) < 4  # the reader recovers after the failure


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_300vw_forked_worker_opens_its_own_video(tmp_path: Path) -> None:
    fx.make_300vw(tmp_path, n_frames=4)
    ds = IBUG300VWDataset(tmp_path)
    ds[0].load_image()  # the parent now holds the video open
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the frame's grey and whether the capture was reopened here
        try:
            mean = ds[3].load_image().mean()
            reopened = common._video is not None and common._video.pid == os.getpid()
            os.write(write_end, f"{mean} {int(reopened)}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    mean, reopened = os.read(read_end, 100).decode().split()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert abs(float(mean) - fx.frame_value(3)) < 4 and reopened == "1"
    assert abs(ds[1].load_image().mean() - fx.frame_value(1)) < 4


def test_300vw_bad_annotation_name(tmp_path: Path) -> None:
    fx.make_300vw(tmp_path, n_frames=2)
    fx.write_pts(tmp_path / "001" / "annot" / "frame_a.pts", fx.ibug68_points())
    with pytest.raises(AnnotationError, match=r"frame_a\.pts: expected a 1-based frame number"):
        IBUG300VWDataset(tmp_path)


# ---------------------------------------------------------------- MERL-RAV


def test_merlrav_visibility_coding(tmp_path: Path) -> None:
    truth = fx.make_merlrav(tmp_path)
    ds = MERLRAVDataset(tmp_path)
    assert len(ds) == 3
    sample = next(s for s in ds if s.extras["annotation_path"].stem == "image00013")
    raw = truth["frontal/trainset/image00013"]
    assert sample.extras["pose_group"] == "frontal" and sample.extras["split"] == "train"
    # 0-2 self-occluded: no location, visibility 0.
    assert np.isnan(sample.landmarks[:3]).all()
    np.testing.assert_array_equal(sample.visibility[:3], 0)
    np.testing.assert_array_equal(sample.extras["self_occluded"][:3], True)
    # 3-5 externally occluded: stored as (-x, -y), located at (x, y), visibility 1, flagged.
    np.testing.assert_allclose(sample.landmarks[3:6], -raw[3:6] - 0.5, atol=1e-5)
    np.testing.assert_array_equal(sample.visibility[3:6], 1)
    np.testing.assert_array_equal(sample.extras["externally_occluded"][3:6], True)
    # The rest: visible at x - 0.5.
    np.testing.assert_allclose(sample.landmarks[6:], raw[6:] - 0.5, atol=1e-5)
    np.testing.assert_array_equal(sample.visibility[6:], 1)
    assert sample.extras["self_occluded"].sum() == 3 and sample.extras["externally_occluded"].sum() == 3
    assert sample.layout == "ibug68" and sample.semantics == "ibug2d"


def test_merlrav_splits_and_multi_face_image(tmp_path: Path) -> None:
    fx.make_merlrav(tmp_path)
    assert len(MERLRAVDataset(tmp_path, split="train")) == 2
    test = MERLRAVDataset(tmp_path, split="test")
    assert len(test) == 1 and test[0].extras["pose_group"] == "left"
    multi = next(s for s in MERLRAVDataset(tmp_path, split="train") if s.extras["pose_group"] == "lefthalf")
    assert multi.image_path.name == "image20991.jpg"  # labels image20991_1.pts -> image image20991.jpg
    assert np.isfinite(multi.landmarks).all() and (multi.visibility == 1).all()
    with pytest.raises(ValueError, match="split must be one of train, test, all"):
        MERLRAVDataset(tmp_path, split="val")


# ---------------------------------------------------------------- WFLW


@pytest.mark.parametrize("split", ["train", "test"])
def test_wflw_reader(tmp_path: Path, split: str) -> None:
    rows = fx.make_wflw(tmp_path, split)
    ds = WFLWDataset(tmp_path, split=split)
    assert len(ds) == 2
    for sample, (points, box, attrs, name) in zip(ds, rows):
        assert sample.landmarks.shape == (98, 2) and sample.visibility.shape == (98,)
        np.testing.assert_allclose(sample.landmarks, points + 0.5, atol=1e-5)  # 0-based centres -> +0.5
        np.testing.assert_allclose(sample.box, np.array(box) + 0.5)
        assert sample.extras["attributes"] == dict(zip(
            ("pose", "expression", "illumination", "make_up", "occlusion", "blur"), attrs))
        assert sample.image_path == tmp_path / "WFLW_images" / name
        assert sample.layout == "wflw98" and sample.semantics == "wflw"
        assert sample.load_image().shape == (fx.H, fx.W, 3)
    np.testing.assert_allclose(ds[0].landmarks[0], [0.5, 0.5])  # file (0, 0) is the top-left pixel centre


def test_wflw_wrong_field_count(tmp_path: Path) -> None:
    rows = fx.make_wflw(tmp_path)
    txt = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_train.txt"
    lines = txt.read_text().splitlines()
    lines[1] = lines[1].replace(" " + rows[1][3], "").rsplit(" ", 1)[0]  # drop the name and a flag
    txt.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"list_98pt_rect_attr_train\.txt line 2: expected 207 fields .* got 205"):
        WFLWDataset(tmp_path)


def test_wflw_bad_number(tmp_path: Path) -> None:
    fx.make_wflw(tmp_path)
    txt = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_train.txt"
    fields = txt.read_text().splitlines()[0].split()
    fields[5] = "x1.5"
    txt.write_text(" ".join(fields) + "\n")
    with pytest.raises(AnnotationError, match=r"list_98pt_rect_attr_train\.txt line 1: bad number"):
        WFLWDataset(tmp_path)


def test_wflw_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="list_98pt_rect_attr_test.txt"):
        WFLWDataset(tmp_path, split="test")


# ---------------------------------------------------------------- COFW


def _check_cofw(ds: COFWDataset) -> None:
    images, phis, boxes = fx.cofw_arrays()
    assert len(ds) == 2
    for k, sample in enumerate(ds):
        assert sample.landmarks.shape == (29, 2) and sample.layout == "cofw29" and sample.semantics == "cofw"
        np.testing.assert_allclose(sample.landmarks[:, 0], phis[k, 0:29] - 0.5)
        np.testing.assert_allclose(sample.landmarks[:, 1], phis[k, 29:58] - 0.5)
        flags = phis[k, 58:87] == 1
        np.testing.assert_array_equal(sample.visibility, np.where(flags, 0.0, 1.0))  # occluded -> 0
        np.testing.assert_array_equal(sample.extras["occluded"], flags)
        x, y, w, h = boxes[k]
        np.testing.assert_allclose(sample.box, [x - 0.5, y - 0.5, x - 0.5 + w, y - 0.5 + h])
        assert sample.image_path == ds.mat_path
    rgb, gray = ds[0].load_image(), ds[1].load_image()
    assert rgb.shape == gray.shape == (fx.H, fx.W, 3)
    assert tuple(rgb[0, 0]) == (200, 0, 0)
    assert (gray == 77).all()


@pytest.mark.parametrize("split", ["train", "test"])
def test_cofw_v5(tmp_path: Path, split: str) -> None:
    fx.make_cofw_v5(tmp_path, split)
    _check_cofw(COFWDataset(tmp_path, split=split))


def test_cofw_v73(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = fx.make_cofw_v73(tmp_path, "test")
    assert scipy.io.matlab.matfile_version(str(path)) == (2, 0)
    _check_cofw(COFWDataset(tmp_path, split="test"))


def test_cofw_v73_without_h5py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A MATLAB v7.3 header is all the reader looks at before it needs h5py.
    path = tmp_path / "COFW_train_color.mat"
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116, b" ") + b" " * 8 + b"\x00\x02IM"
    path.write_bytes(header.ljust(512, b"\x00") + b"\x89HDF\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(ImportError, match=r"COFW_train_color\.mat: this \.mat is MATLAB v7\.3 \(HDF5\); install h5py"):
        COFWDataset(tmp_path)


def test_cofw_malformed(tmp_path: Path) -> None:
    images, phis, boxes = fx.cofw_arrays()
    cell = np.empty((2, 1), dtype=object)
    cell[0, 0], cell[1, 0] = images
    path = tmp_path / "COFW_train_color.mat"
    scipy.io.savemat(str(path), {"IsTr": cell, "phisTr": phis[:, :58], "bboxesTr": boxes})
    with pytest.raises(AnnotationError, match=r"COFW_train_color\.mat: phisTr has shape \(2, 58\), expected \(N, 87\)"):
        COFWDataset(tmp_path)
    scipy.io.savemat(str(path), {"IsT": cell, "phisT": phis, "bboxesT": boxes})
    with pytest.raises(AnnotationError, match=r"COFW_train_color\.mat: missing IsTr, phisTr, bboxesTr"):
        COFWDataset(tmp_path)
    path.write_text("not a mat file at all, just some text that is long enough " * 4)
    with pytest.raises(AnnotationError, match=r"COFW_train_color\.mat: "):
        COFWDataset(tmp_path)


# ---------------------------------------------------------------- AFLW2000-3D


def test_aflw2000_reader(tmp_path: Path) -> None:
    truth = fx.make_aflw2000(tmp_path)
    for root in (tmp_path, tmp_path / "AFLW2000"):
        ds = AFLW2000Dataset(root)
        assert len(ds) == 2
        for sample, (name, t) in zip(ds, sorted(truth.items())):
            assert sample.image_path.name == f"{name}.jpg"
            assert sample.layout == "ibug68" and sample.semantics == "aflw3d"
            np.testing.assert_allclose(sample.landmarks, t["pt3d_68"][:2].T - 0.5, atol=1e-5)
            np.testing.assert_allclose(sample.extras["depth"], t["pt3d_68"][2], atol=1e-5)
            pose = t["Pose_Para"][0]
            np.testing.assert_allclose(sample.extras["pose_rad"], pose[:3])
            np.testing.assert_allclose(sample.extras["pose_deg"], np.degrees(pose[:3]))
            np.testing.assert_allclose(sample.extras["translation"], pose[3:6])
            assert sample.extras["scale"] == pytest.approx(pose[6])
    np.testing.assert_allclose(ds[0].landmarks[0], [0.5, 0.5])  # Matlab (1, 1) is the top-left pixel centre
    np.testing.assert_allclose(ds[1].extras["pose_deg"][1], -57.29577951, rtol=1e-6)  # yaw -1 rad


def test_aflw2000_malformed(tmp_path: Path) -> None:
    fx.make_aflw2000(tmp_path, names=("image00002",))
    mat = tmp_path / "AFLW2000" / "image00002.mat"
    scipy.io.savemat(str(mat), {"pt3d_68": np.zeros((2, 68)), "Pose_Para": np.zeros((1, 7))})
    with pytest.raises(AnnotationError, match=r"image00002\.mat: pt3d_68 has shape \(2, 68\), expected \(3, 68\)"):
        AFLW2000Dataset(tmp_path)[0]
    scipy.io.savemat(str(mat), {"pt3d_68": np.zeros((3, 68))})
    with pytest.raises(AnnotationError, match=r"image00002\.mat: missing Pose_Para"):
        AFLW2000Dataset(tmp_path)[0]


# ---------------------------------------------------------------- FRL .tem


def test_parse_tem_reads_points_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.tem"
    path.write_text(fx.tem_text(fx.frl_points(0)))
    np.testing.assert_allclose(parse_tem(path), fx.frl_points(0))
    assert parse_tem_template_lines(path) == fx.FRL_TEMPLATE_LINES


def test_frl_reader_returns_the_layout_points_in_layout_order(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    truth = fx.make_frl(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = FRLDataset(tmp_path)
    assert "orphan.tem" in caplog.text  # a template without a photo is skipped
    assert len(ds) == 2
    indices = frl_layout_indices()
    assert len(indices) == len(set(indices)) and all(0 <= i < 189 for i in indices)
    by_stem = {str(s.extras["annotation_path"].relative_to(tmp_path).with_suffix("")): s for s in ds}
    assert set(by_stem) == set(truth)
    for stem, points in truth.items():
        sample = by_stem[stem]
        assert sample.layout == "frl" and sample.semantics == "frl"
        assert sample.landmarks.dtype == np.float32 and sample.landmarks.shape == (len(indices), 2)
        # .tem positions are top-left-corner pixel coordinates already: no offset.
        np.testing.assert_allclose(sample.landmarks, points[indices], atol=1e-5)
        assert (sample.visibility == 1).all() and sample.visibility.shape == (len(indices),)
        assert sample.image_path == tmp_path / f"{stem}.jpg"
        assert sample.load_image().shape == (fx.H, fx.W, 3)


def test_frl_layout_names_carry_the_template_index() -> None:
    from core.layouts import LAYOUTS_DIR

    names = json.loads((LAYOUTS_DIR / "frl.json").read_text())["names"]
    assert frl_layout_indices() == [int(n.split(":")[0]) for n in names]
    assert names[frl_layout_indices().index(18)] == "18: outside corner of left eye"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: ["many", *rows[1:]], r"line 1: expected the point count \(an integer\), got 'many'"),
        (lambda rows: rows[:50], r"line 50: the point count says 189 but the file ends after 49 point lines"),
        (lambda rows: rows[:5] + ["12.5 x"] + rows[6:], r"line 6: expected 2 numbers 'x<TAB>y', got '12.5 x'"),
        (lambda rows: rows[:5] + ["12.5\t8\t3"] + rows[6:], r"line 6: expected 2 numbers"),
        (lambda rows: rows[:7] + ["inf\t3"] + rows[7:], r"line 8: point is not finite"),
    ],
)
def test_malformed_tem_names_file_and_line(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "bad.tem"
    path.write_text("\n".join(edit(fx.tem_text(fx.frl_points(0)).splitlines())) + "\n")
    with pytest.raises(AnnotationError, match=r"bad\.tem " + message):
        parse_tem(path)


def test_malformed_tem_template_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.tem"
    path.write_text(fx.tem_text(fx.frl_points(0), [[18, 19, 500]]))
    with pytest.raises(AnnotationError, match=r"bad\.tem line 194: expected 3 point indices in 0\.\.188"):
        parse_tem_template_lines(path)


def test_frl_reader_rejects_other_templates(tmp_path: Path) -> None:
    (tmp_path / "a.tem").write_text(fx.tem_text(fx.frl_points(0)[:179], []))
    fx.write_image(tmp_path / "a.jpg")
    ds = FRLDataset(tmp_path)
    with pytest.raises(AnnotationError, match=r"a\.tem line 1: expected the 189-point FRL template, found 179"):
        ds[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .tem files with images"):
        FRLDataset(empty)


def test_frl_real_dataset_yields_items(tmp_path: Path) -> None:
    from core.layouts import SEMANTICS, load_layout
    from training.data import RealDataset

    fx.make_frl(tmp_path)
    ds = RealDataset(f"frl:root={tmp_path}", image_size=64, augment=False)
    assert len(ds) == 2 and ds.layout == "frl"
    n = len(load_layout("frl"))
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 64, 64) and int(item["style_id"]) == SEMANTICS["frl"]
        assert item["queries"].shape == (n, 3) and item["targets_2d"].shape == (n, 2)
        assert bool((item["valid"] == 1).all())


# ---------------------------------------------------------------- core.predict JSON as pseudo-labels


def _predictions_file(tmp_path: Path) -> Path:
    """A core.predict JSON over three images: a sure face (two candidates), an unsure one, none; and a failed read."""
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((40, 30, 3), 128, np.uint8))
    points = np.stack([np.linspace(5, 25, 68), np.linspace(5, 35, 68)], 1)

    def face(confidence: float, shift: float = 0.0) -> dict:
        return {"confidence": confidence, "landmarks_2d": (points + shift).tolist(), "visibility": [1.0] * 68}

    entries = [{"path": str(tmp_path / "a.jpg"), "faces": [face(0.95, 1.0), face(0.99)]},
               {"path": "b.jpg", "faces": [face(0.5)]},
               {"path": "c.jpg", "faces": []}, {"path": "d.jpg", "error": "cannot read"}]
    (tmp_path / "labels.json").write_text(json.dumps(entries))
    return tmp_path / "labels.json"


def test_predictions_reader_keeps_the_sure_faces(tmp_path: Path) -> None:
    from training.datasets import PredictionsDataset

    _predictions_file(tmp_path)
    ds = open_dataset(f"predictions:root={tmp_path},layout=ibug68")
    assert isinstance(ds, PredictionsDataset) and len(ds) == 1
    sample = ds[0]
    assert sample.image_path == tmp_path / "a.jpg" and sample.layout == "ibug68" and sample.semantics == "canonical"
    assert sample.landmarks[0] == pytest.approx([5.0, 5.0])  # the more confident candidate
    lenient = open_dataset(f"predictions:root={tmp_path},min_confidence=0.4")
    assert len(lenient) == 2 and lenient[1].image_path == tmp_path / "b.jpg"  # relative: from root
    assert lenient[1].load_image().shape == (40, 30, 3)
    from training.data import RealDataset

    item = RealDataset(f"predictions:root={tmp_path}", image_size=64, augment=False)[0]
    assert int(item["style_id"]) == 0 and item["targets_2d"].shape == (68, 2) and bool((item["valid"] == 1).all())


def test_predictions_reader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="core.predict"):
        open_dataset(f"predictions:root={tmp_path}")
    _predictions_file(tmp_path)
    with pytest.raises(AnnotationError, match="labels.json.*layout wflw98 has 98"):
        open_dataset(f"predictions:root={tmp_path},layout=wflw98")
    (tmp_path / "labels.json").write_text("{not json")
    with pytest.raises(AnnotationError, match="labels.json: not a core.predict JSON"):
        open_dataset(f"predictions:root={tmp_path}")


# ---------------------------------------------------------------- open_dataset


def test_open_dataset_specs(tmp_path: Path) -> None:
    fx.make_300w(tmp_path / "300W")
    fx.make_wflw(tmp_path / "WFLW", "test")
    fx.make_cofw_v5(tmp_path / "COFW", "train")
    fx.make_aflw2000(tmp_path / "AFLW")
    fx.make_300vw(tmp_path / "300VW", n_frames=2)
    fx.make_merlrav(tmp_path / "MERL")
    fx.make_frl(tmp_path / "FRL")
    cases = {
        f"300w:root={tmp_path / '300W'}": (IBUG300WDataset, 3),
        f"wflw:root={tmp_path / 'WFLW'},split=test": (WFLWDataset, 2),
        f"cofw:root={tmp_path / 'COFW'},split=train": (COFWDataset, 2),
        f"aflw2000:root={tmp_path / 'AFLW'}": (AFLW2000Dataset, 2),
        f"300vw:root={tmp_path / '300VW'}": (IBUG300VWDataset, 2),
        f"merlrav:root={tmp_path / 'MERL'},split=test": (MERLRAVDataset, 1),
        f"frl:root={tmp_path / 'FRL'}": (FRLDataset, 2),
        f" WFLW : root = {tmp_path / 'WFLW'} , split = test ": (WFLWDataset, 2),
    }
    for spec, (cls, n) in cases.items():
        ds = open_dataset(spec)
        assert type(ds) is cls and len(ds) == n, spec
    assert set(DATASETS) == {"300w", "300vw", "merlrav", "wflw", "cofw", "aflw2000", "frl", "predictions"}


def test_open_dataset_errors(tmp_path: Path) -> None:
    valid = "300w, 300vw, merlrav, wflw, cofw, aflw2000, frl"
    with pytest.raises(ValueError, match=rf"unknown dataset 'lfpw'.*valid names: {valid}"):
        open_dataset("lfpw:root=/x")
    with pytest.raises(ValueError, match=r"needs root=PATH.*valid names: 300w"):
        open_dataset("wflw:split=test")
    with pytest.raises(ValueError, match=r"needs root=PATH"):
        open_dataset("300w")
    with pytest.raises(ValueError, match=r"dataset '300w' has no option 'split'; it accepts: root"):
        open_dataset(f"300w:root={tmp_path},split=test")
    with pytest.raises(ValueError, match=r"bad option 'oops'"):
        open_dataset(f"300w:root={tmp_path},oops")
    with pytest.raises(ValueError, match=r"split must be one of train, test"):
        open_dataset(f"cofw:root={tmp_path},split=val")


# ---------------------------------------------------------------- image loading


def _sample(path: Path) -> AnnotatedImage:
    return AnnotatedImage(path, np.zeros((68, 2), np.float32), np.ones(68, np.float32), "ibug68", "ibug2d")


def test_load_image_conversions(tmp_path: Path) -> None:
    gray = np.arange(fx.H * fx.W, dtype=np.uint8).reshape(fx.H, fx.W)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    out = _sample(tmp_path / "gray.png").load_image()
    assert out.shape == (fx.H, fx.W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.stack([gray] * 3, axis=-1))

    bgra = np.zeros((fx.H, fx.W, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128  # B G R A
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    out = read_image(tmp_path / "rgba.png")
    assert out.shape == (fx.H, fx.W, 3)
    assert tuple(out[3, 3]) == (30, 20, 10)

    bgr16 = np.zeros((fx.H, fx.W, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 2] = 65535, 257 * 100  # blue full, red 100/255
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr16)
    out = read_image(tmp_path / "rgb16.png")
    assert out.dtype == np.uint8 and tuple(out[0, 0]) == (100, 0, 255)

    gray16 = np.full((fx.H, fx.W), 257 * 42, np.uint16)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    out = read_image(tmp_path / "gray16.png")
    assert out.shape == (fx.H, fx.W, 3) and (out == 42).all()


def test_load_image_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"missing\.jpg: cannot read image file"):
        _sample(tmp_path / "missing.jpg").load_image()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(OSError, match=r"broken\.png: cannot decode image"):
        _sample(tmp_path / "broken.png").load_image()
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(OSError, match=r"empty\.jpg: cannot decode image"):
        read_image(tmp_path / "empty.jpg")
