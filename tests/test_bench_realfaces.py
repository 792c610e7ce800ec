"""The real-face benchmark (bench.realfaces): its scorer gives ../shared/tools/realface_check.py's numbers on the
same predictions, its pose angles are that file's, the docs section is replaced in place, and the command runs on
2 faces of each set with a small untrained exported model."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from bench.realfaces import inputs, report, scoring

REFERENCE = inputs.REPO_DIR.parent / "shared" / "tools" / "realface_check.py"
needs_reference = pytest.mark.skipif(not REFERENCE.is_file() or not inputs.AFLW2000_DEV.is_dir(),
                                     reason="../shared/tools/realface_check.py or aflw2000_dev absent")


@pytest.fixture(scope="module")
def reference():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("realface_check", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_reference
def test_pose_angles_are_the_reference_convention(reference) -> None:
    from scipy.spatial.transform import Rotation

    for R in Rotation.random(20, random_state=0).as_matrix():
        angles = scoring.pose_angles(R)
        assert np.allclose(angles, reference.euler(R), atol=1e-9)
        assert np.allclose(scoring.pose_rotation(*angles), reference.rotation(*angles), atol=1e-12)
        assert np.allclose(scoring.pose_rotation(*angles), R, atol=1e-9)


@needs_reference
def test_scorer_gives_the_reference_numbers(reference) -> None:
    faces = inputs.aflw2000_dev(limit=8).faces
    rng = np.random.default_rng(0)
    entries = []
    for k, face in enumerate(faces):
        gt, R = face.gt, scoring.pose_rotation(*face.pose).tolist()
        near = {"landmarks_2d": (gt + rng.normal(0, 1.5 + k, gt.shape)).tolist(), "R": R}
        far = {"landmarks_2d": (gt + 400.0).tolist(), "R": None}
        candidates = [
            [near],                                                        # small error, exact pose
            [{**near, "R": (np.array(R) @ scoring.pose_rotation(8, -15, 4)).tolist()}],   # pose off
            [],                                                            # no face
            [far],                                                         # a face elsewhere: a miss
            [far, {**near, "R": None}],                                    # the near one is kept; no pose
            [{"landmarks_2d": (gt + (0.09 * np.linalg.norm(gt[36] - gt[45]), 0)).tolist(), "R": R}],
            [{"landmarks_2d": (gt * 1.3 - gt.mean(0) * 0.3).tolist(), "R": R}],   # detected, a failure
            [{"landmarks_2d": gt[:60].tolist()}],                         # wrong point count: ignored
        ][k]
        entries.append({"path": str(face.image_path), "faces": candidates})
    expected = reference.score(entries, [f.name for f in faces])
    got = scoring.summarize(scoring.score_set([e["faces"] for e in entries], faces), faces)
    assert got["n"] == expected["n"] == 8
    assert got["detected"] == expected["detected"] == 5
    assert got["nme_box"] == pytest.approx(expected["nme_box"], rel=1e-12)
    assert got["fr_0.1"] == pytest.approx(expected["fr_0.1"], rel=1e-12)
    assert got["pose_mae"] == pytest.approx(expected["pose_mae"], rel=1e-12)
    assert got["pose_n"] == 4 and sum(b["n"] for b in got["yaw_bins"]) == 8
    assert sum(b["detected"] for b in got["yaw_bins"]) == 5


def test_section_replaced_in_place(tmp_path) -> None:
    doc = tmp_path / "b.md"
    doc.write_text("# B\n\n## 1. Synthetic\n\ntext\n")
    report.update_section(doc, [report.SECTION_TITLE, "", "first", ""])
    report.update_section(doc, [report.SECTION_TITLE, "", "second", ""])
    text = doc.read_text()
    assert text.count(report.SECTION_TITLE) == 1 and "second" in text and "first" not in text
    assert text.startswith("# B\n\n## 1. Synthetic\n\ntext\n\n")
    assert report.kept_section(doc) == [report.SECTION_TITLE, "", "second"]
    # Another command's section, by its title (bench.benchmark keeps the long-take figures so).
    doc.write_text(doc.read_text() + "\n## Long takes\n\nfigures\n")
    assert report.kept_section(doc, "## Long takes") == ["## Long takes", "", "figures"]
    assert report.kept_section(doc) == [report.SECTION_TITLE, "", "second", ""]


def test_command_refuses_to_replace_an_existing_doc(tmp_path, caplog) -> None:
    """`--doc` onto an existing file, or `--out` onto a non-empty folder, needs --overwrite: exit 2 before any model
    (here a missing file) or face set (here missing folders) is read, the doc untouched."""
    from bench.realfaces.__main__ import main

    doc, out = tmp_path / "doc.md", tmp_path / "out"
    doc.write_text("# B\n\n## 1. Synthetic\n")
    command = ["--model", str(tmp_path / "missing.onnx"), "--out", str(out), "--doc", str(doc),
               "--aflw-root", str(tmp_path / "no_aflw"), "--w300-root", str(tmp_path / "no_300w")]
    assert main(command) == 2
    assert doc.read_text() == "# B\n\n## 1. Synthetic\n" and not out.exists()
    assert (f"--doc {doc.resolve()} already exists: choose another path, or pass --overwrite to replace it"
            in caplog.text)
    out.mkdir()
    (out / "results.json").write_text("{}")
    assert main(command[:-6] + command[-4:]) == 2  # without --doc: the folder alone is refused
    assert (out / "results.json").read_text() == "{}"
    assert f"--out {out.resolve()} already exists and is not empty" in caplog.text


@pytest.mark.slow
@pytest.mark.skipif(not inputs.AFLW2000_DEV.is_dir() or not inputs.W300_TRAIN.is_dir(),
                    reason="../shared/realfaces absent")
def test_command_on_two_faces(tmp_path) -> None:
    from bench.realfaces.__main__ import main
    from model_fixtures import small_model
    from training.export import export_model

    path = export_model(small_model().eval(), tmp_path / "small.onnx", (128, 128), source="test")
    out = tmp_path / "out"
    assert main(["--model", str(path), "--limit", "2", "--out", str(out), "--doc", str(tmp_path / "doc.md")]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"aflw2000_dev", "300w_val"}
    for per_set in results.values():
        ours = per_set["ours:small"]
        assert ours["summary"]["n"] == 2 and len(ours["faces"]) == 2
    assert (out / "ced_aflw2000_dev.png").is_file() and (out / "ced_300w_val.png").is_file()
    assert (out / report.OVERLAY_NAME).is_file()
    assert report.OVERLAY_NAME in (out / ".gitignore").read_text().split()
    text = (tmp_path / "doc.md").read_text()
    assert text.startswith(report.SECTION_TITLE) and "| Ours (small, canonical) |" in text
    assert "| Ours (small, ibug2d) |" in text


def test_aflw_faces_are_scored_with_the_layout_fitted_on_the_other_fold() -> None:
    """Cross-fitting: alternate faces get the two fold layouts, each a loadable 68-point layout that differs from
    the shipped fit on all photos."""
    from core.layouts import load_layout

    face_set = inputs.FaceSet("aflw2000_dev", "AFLW2000-3D dev", "canonical", [], layout="ibug68_ls3d",
                              fold_layouts=tuple(inputs.fold_layout_path(f) for f in range(inputs.FOLDS)))
    assert [inputs.fold_of(i) for i in range(4)] == [0, 1, 0, 1]
    assert [face_set.layout_of(i) for i in range(3)] == [inputs.fold_layout_path(0), inputs.fold_layout_path(1),
                                                         inputs.fold_layout_path(0)]
    assert inputs.FaceSet("300w_val", "300-W", "ibug2d", []).layout_of(5) == "ibug68"
    shipped = load_layout("ibug68_ls3d")
    for fold in range(inputs.FOLDS):
        layout = load_layout(inputs.fold_layout_path(fold))
        assert len(layout) == 68 and layout.names == shipped.names
        assert not np.array_equal(layout.barycentric, shipped.barycentric)
