"""Tiny copies of real landmark datasets, written in the exact file formats the datasets ship in, for the
tests of training.datasets. Coordinates returned by the helpers are in each file's own convention."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.io

H, W = 24, 32  # fixture image size


def ibug68_points(shift: float = 0.0) -> np.ndarray:
    """68 distinct points in .pts (1-based) coordinates; the first is (1, 1) before the shift."""
    i = np.arange(68, dtype=np.float64)
    return np.stack([1.0 + i * 0.25 + shift, 1.0 + i * 0.125 + shift], axis=1)


def write_pts(path: Path, points: np.ndarray, n_points: int | None = None) -> Path:
    """A .pts file exactly as iBUG writes them (note the two spaces after `n_points:`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(points) if n_points is None else n_points
    body = "".join(f"{x:.6f} {y:.6f}\n" for x, y in points)
    path.write_text(f"version: 1\nn_points:  {n}\n{{\n{body}}}\n")
    return path


def write_image(path: Path, value: int = 128) -> Path:
    """A small colour image whose top-left pixel is pure red (to check channel order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = np.full((H, W, 3), value, np.uint8)
    bgr[0, 0] = (0, 0, 255)
    assert cv2.imwrite(str(path), bgr)
    return path


def make_300w(root: Path) -> dict[str, np.ndarray]:
    """300W-like tree: helen/trainset (.jpg), 300W/01_Indoor (.png), afw with a `_1` face suffix."""
    faces = {
        "helen/trainset/100032540_1": (".jpg", ibug68_points(0.0)),
        "300W/01_Indoor/indoor_001": (".png", ibug68_points(2.0)),
        "afw/134212_1": (".jpg", ibug68_points(4.0)),
    }
    for stem, (suffix, points) in faces.items():
        write_pts(root / f"{stem}.pts", points)
        write_image(root / f"{stem}{suffix}")
    return {stem: points for stem, (_, points) in faces.items()}


WFLW_ATTRS = [(1, 0, 0, 0, 1, 0), (0, 1, 1, 0, 0, 1)]
WFLW_NAMES = ["51--Dresses/51_Dresses_wearingdress_51_377.jpg", "0--Parade/0_Parade_marchingband_1_116.jpg"]


def wflw_points(k: int) -> np.ndarray:
    i = np.arange(98, dtype=np.float64)
    return np.stack([i * 0.3 + k, i * 0.2 + 2 * k], axis=1)


def wflw_line(points: np.ndarray, box: tuple[int, int, int, int], attrs: tuple[int, ...], name: str) -> str:
    coords = " ".join(f"{v:.6f}" for v in points.ravel())  # x0 y0 x1 y1 ...
    return f"{coords} {' '.join(map(str, box))} {' '.join(map(str, attrs))} {name}"


def make_wflw(root: Path, split: str = "train") -> list[tuple[np.ndarray, tuple[int, ...], tuple[int, ...], str]]:
    """WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{split}.txt + WFLW_images/."""
    rows = [(wflw_points(k), (k, 2 * k, 20 + k, 22 + k), WFLW_ATTRS[k], WFLW_NAMES[k]) for k in range(2)]
    folder = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"list_98pt_rect_attr_{split}.txt").write_text("".join(wflw_line(*row) + "\n" for row in rows))
    for name in WFLW_NAMES:
        write_image(root / "WFLW_images" / name)
    return rows


def cofw_arrays(n: int = 2) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """COFW content: images (one RGB, one grayscale), phis (N, 87) and boxes (N, 4) in Matlab coordinates."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200  # red
    gray = np.full((H, W), 77, np.uint8)
    images = [rgb, gray][:n]
    phis = np.zeros((n, 87))
    for k in range(n):
        phis[k, 0:29] = 1.0 + np.arange(29) + k
        phis[k, 29:58] = 2.0 + np.arange(29) * 0.5 + k
        phis[k, 58:87] = (np.arange(29) % 3 == k).astype(float)  # occlusion flags
    boxes = np.array([[1.0 + k, 3.0 + k, 20.0, 15.0] for k in range(n)])
    return images, phis, boxes


def cofw_keys(split: str) -> tuple[str, str, str]:
    return ("IsTr", "phisTr", "bboxesTr") if split == "train" else ("IsT", "phisT", "bboxesT")


def make_cofw_v5(root: Path, split: str = "train") -> Path:
    """COFW_{split}_color.mat as a MATLAB v5 file (cell array of images, N x 87 phis, N x 4 boxes)."""
    images, phis, boxes = cofw_arrays()
    cell = np.empty((len(images), 1), dtype=object)
    for k, im in enumerate(images):
        cell[k, 0] = im
    img_key, phis_key, box_key = cofw_keys(split)
    path = root / f"COFW_{split}_color.mat"
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {img_key: cell, phis_key: phis, box_key: boxes})
    return path


def make_cofw_v73(root: Path, split: str = "train") -> Path:
    """COFW_{split}_color.mat laid out as MATLAB v7.3 writes it: HDF5 behind a 512-byte MAT header, arrays
    stored with reversed axes, the image cell array as references into `#refs#`. Needs h5py."""
    import h5py

    images, phis, boxes = cofw_arrays()
    img_key, phis_key, box_key = cofw_keys(split)
    path = root / f"COFW_{split}_color.mat"
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        cell = f.create_dataset(img_key, shape=(1, len(images)), dtype=h5py.ref_dtype)
        for k, im in enumerate(images):
            d = refs.create_dataset(f"img{k}", data=np.transpose(im))
            d.attrs["MATLAB_class"] = np.bytes_("uint8")
            cell[0, k] = d.ref
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
        f.create_dataset(phis_key, data=phis.T).attrs["MATLAB_class"] = np.bytes_("double")
        f.create_dataset(box_key, data=boxes.T).attrs["MATLAB_class"] = np.bytes_("double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b" " * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))
    return path


def make_aflw2000(
    root: Path, names: tuple[str, ...] = ("image00002", "image00004")
) -> dict[str, dict[str, np.ndarray]]:
    """AFLW2000/imageNNNNN.jpg + .mat with pt3d_68 (3 x 68), Pose_Para (1 x 7) and pt2d (2 x 21)."""
    folder = root / "AFLW2000"
    out = {}
    for k, name in enumerate(names):
        i = np.arange(68, dtype=np.float64)
        pt3d = np.stack([1.0 + i * 0.4 + k, 1.0 + i * 0.3 + k, -10.0 + i])  # 3 x 68
        pose = np.array([[0.1, -0.5 * (k + 1), 0.05, 200.0, 210.0, 5.0, 0.0012]])  # pitch yaw roll tx ty tz s
        pt2d = np.full((2, 21), -1.0)
        folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(folder / f"{name}.mat"), {"pt3d_68": pt3d, "Pose_Para": pose, "pt2d": pt2d,
                                                         "roi": np.array([[0.0, 0.0, 31.0, 23.0]])})
        write_image(folder / f"{name}.jpg")
        out[name] = {"pt3d_68": pt3d, "Pose_Para": pose}
    return out


def frame_value(k: int) -> int:
    return 20 + 50 * k


def make_300vw(root: Path, clip: str = "001", n_frames: int = 5) -> dict[int, np.ndarray]:
    """`<clip>/vid.avi` (MJPG, uniform frames of grey frame_value(k)) + `<clip>/annot/000001.pts ...`."""
    clip_dir = root / clip
    (clip_dir / "annot").mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(clip_dir / "vid.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    assert writer.isOpened()
    points = {}
    for k in range(n_frames):
        writer.write(np.full((H, W, 3), frame_value(k), np.uint8))
        points[k + 1] = ibug68_points(float(k))
        write_pts(clip_dir / "annot" / f"{k + 1:06d}.pts", points[k + 1])
    writer.release()
    return points


def merlrav_points() -> np.ndarray:
    """68 MERL-RAV points as stored: 0-2 self-occluded (-1, -1), 3-5 externally occluded (-x, -y), rest visible."""
    points = ibug68_points(10.0)
    points[0:3] = -1.0
    points[3:6] = -points[3:6]
    return points


def make_merlrav(root: Path) -> dict[str, np.ndarray]:
    """merl_rav_organized-style tree: frontal/trainset, left/testset, and lefthalf/trainset holding face `_1`
    of image20991.jpg (labels of a multi-face image, image not duplicated)."""
    faces = {
        "frontal/trainset/image00013": merlrav_points(),
        "left/testset/image00050": ibug68_points(3.0),
        "lefthalf/trainset/image20991_1": ibug68_points(5.0),
    }
    for stem, points in faces.items():
        write_pts(root / f"{stem}.pts", points)
        write_image(root / f"{stem.removesuffix('_1')}.jpg")
    return faces


FRL_POINTS = 189
# Two of the FRL template's drawing lines (the left iris loop, the left eye's upper lid), as a .tem stores them.
FRL_TEMPLATE_LINES = [[2, 3, 4, 5, 6, 7, 8, 9, 2], [18, 19, 20, 21, 22]]


def frl_points(k: int) -> np.ndarray:
    """189 distinct points inside the fixture image, in .tem (top-left-corner origin) pixels."""
    i = np.arange(FRL_POINTS, dtype=np.float64)
    return np.stack([1.0 + (i % 27) + 0.25 * k, 1.0 + (i // 27) * 3.0 + 0.5 * k], axis=1)


def tem_text(points: np.ndarray, lines: list[list[int]] = FRL_TEMPLATE_LINES) -> str:
    """A .tem file as webmorph writes them: the count, `x<TAB>y` rows, then the line definitions."""
    rows = "".join(f"{x:.3f}\t{y:.3f}\n" for x, y in points)
    defs = "".join(f"0\n{len(line)}\n{' '.join(map(str, line))}\n" for line in lines)
    return f"{len(points)}\n{rows}{len(lines)}\n{defs}"


def make_frl(root: Path) -> dict[str, np.ndarray]:
    """FRL-like tree: neutral_front/ and canada/ photos with .tem files, plus a .tem without a photo."""
    faces = {"neutral_front/001_03": frl_points(0), "canada/003f": frl_points(1)}
    for stem, points in faces.items():
        (root / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{stem}.tem").write_text(tem_text(points))
        write_image(root / f"{stem}.jpg")
    (root / "smiling_front").mkdir(parents=True, exist_ok=True)
    (root / "smiling_front" / "orphan.tem").write_text(tem_text(frl_points(2)))
    return faces
