"""The torch detector: camera twins, crop maps, STN, heads, semantic correction, variants, backbones, ONNX."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import geometry
from core.model import BACKBONES, MODEL_VARIANTS, ModelConfig, create_backbone, create_model, export_onnx
from core.model import camera, stn
from core.model.decoder import FourierEncoding, SpatialReadout, occlusion_visibility
from core.onnx_contract import onnx_io_names
from model_fixtures import SMALL, randomise, small_model

torch.set_num_threads(1)

FRAME = 96
CROP = SMALL["crop_size"]


def box_theta(batch: int, hw: tuple[int, int] = (FRAME, FRAME)) -> torch.Tensor:
    h, w = hw
    return stn.theta_from_box(torch.tensor([[0.2 * w, 0.25 * h, 0.8 * w, 0.85 * h]]).repeat(batch, 1), hw)


def run(model: torch.nn.Module, image: torch.Tensor, queries: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
    if not model.config.stn and "crop_theta" not in kwargs:
        kwargs["crop_theta"] = box_theta(image.shape[0], tuple(image.shape[-2:]))
    return model(image, queries, **kwargs)


def similarity_theta(scale: float, angle: float, centre: tuple[float, float], hw: tuple[int, int]) -> torch.Tensor:
    """theta for p_crop = scale * Rot(angle) (p - centre) + CROP / 2."""
    c, s = math.cos(angle), math.sin(angle)
    A = torch.tensor([[[c, s], [-s, c]]]) / scale  # Rot(-angle) / scale: crop -> image
    b = torch.tensor([centre]) - (A @ torch.full((2,), CROP / 2))
    return stn.affine_to_theta(A, b, CROP, hw)


# --- camera twins ------------------------------------------------------------------------------------------------

def test_camera_twins_match_geometry():
    rng = np.random.default_rng(0)
    d6 = rng.normal(size=(5, 6))
    assert np.allclose(camera.rotation_from_6d(torch.tensor(d6)).numpy(), geometry.rotation_from_6d(d6), atol=1e-12)
    R = geometry.pose_to_rotation(20, -10, 5)
    assert np.allclose(camera.rotation_from_6d(camera.rotation_to_6d(torch.tensor(R))).numpy(), R)
    for deg in (-30.0, 0.0, 75.0):
        assert np.allclose(camera.rotation_z(torch.tensor(math.radians(deg), dtype=torch.float64)).numpy(),
                           geometry.rotation_z(deg))
    K = geometry.intrinsics(500.0, 640, 480)
    pts = rng.normal(size=(7, 3)) * 5
    t = np.array([1.0, -2.0, 60.0])
    expected = geometry.project_canonical(pts, K, R, t)
    Kt = camera.intrinsics(*(torch.tensor([v], dtype=torch.float64) for v in (500.0, 320.0, 240.0)))
    got = camera.project_canonical(torch.tensor(pts)[None], Kt, torch.tensor(R)[None], torch.tensor(t)[None])
    assert np.allclose(Kt[0].numpy(), K)
    assert np.allclose(got[0].numpy(), expected)


# --- crops -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("affine", [False, True])
def test_crop_image_round_trip(affine):
    hw = (90, 120)
    theta = similarity_theta(1.7, 0.4, (50.0, 40.0), hw)
    if affine:
        theta = theta + torch.tensor([[[0.05, -0.1, 0.02], [0.07, 0.03, -0.05]]])
    pts = torch.rand(1, 30, 2) * CROP
    img = stn.crop_to_image(pts, theta, CROP, hw)
    assert torch.allclose(stn.image_to_crop(img, theta, CROP, hw), pts, atol=1e-4)
    A, b = stn.theta_to_affine(theta, CROP, hw)
    assert torch.allclose(stn.affine_to_theta(A, b, CROP, hw), theta, atol=1e-6)


def test_similarity_decomposition():
    hw = (90, 120)
    theta = similarity_theta(1.7, 0.4, (50.0, 40.0), hw)
    scale, angle, centre = stn.decompose_similarity(theta, CROP, hw)
    assert scale.item() == pytest.approx(1.7, rel=1e-5)
    assert angle.item() == pytest.approx(0.4, abs=1e-5)
    assert centre[0].tolist() == pytest.approx([50.0, 40.0], abs=1e-4)
    # p_crop = s Rot(angle) (p - centre) + CROP / 2
    p = torch.tensor([[[70.0, 20.0]]])
    c, s = math.cos(0.4), math.sin(0.4)
    expected = 1.7 * torch.tensor([[c, -s], [s, c]]) @ (p[0, 0] - torch.tensor([50.0, 40.0])) + CROP / 2
    assert torch.allclose(stn.image_to_crop(p, theta, CROP, hw)[0, 0], expected, atol=1e-4)


def test_pixel_convention_of_crops():
    """A crop of an image whose value is its own x (pixel centres at i + 0.5) reads back crop_to_image's x."""
    hw = (80, 100)
    xs = torch.arange(hw[1]).float() + 0.5
    ys = torch.arange(hw[0]).float() + 0.5
    image = torch.stack([xs.expand(hw[0], -1), ys[:, None].expand(-1, hw[1]), torch.zeros(hw)])[None]
    theta = similarity_theta(1.2, 0.3, (50.0, 38.0), hw)
    crop = stn.sample_crop(image, theta, CROP)
    centres = torch.stack(torch.meshgrid(torch.arange(CROP) + 0.5, torch.arange(CROP) + 0.5, indexing="xy"), -1)
    where = stn.crop_to_image(centres.reshape(1, -1, 2).float(), theta, CROP, hw).reshape(CROP, CROP, 2)
    inside = ((where > 1) & (where < torch.tensor([hw[1] - 1.0, hw[0] - 1.0]))).all(-1)
    assert inside.sum() > 1000
    assert torch.allclose(crop[0, :2].permute(1, 2, 0)[inside], where[inside], atol=1e-3)
    # and the same sampling as F.affine_grid
    grid = F.affine_grid(theta, (1, 3, CROP, CROP), align_corners=False)
    assert torch.allclose(crop, F.grid_sample(image, grid, align_corners=False), atol=1e-4)


def test_theta_from_box_matches_geometry():
    hw = (90, 120)
    box = np.array([30.0, 20.0, 70.0, 80.0])
    theta = stn.theta_from_box(torch.tensor(box, dtype=torch.float32)[None], hw, scale=1.3)
    M = geometry.similarity_from_box(box, CROP, scale=1.3)  # image -> crop, pixels
    pts = np.array([[10.0, 15.0], [50.0, 50.0], [100.0, 5.0]])
    expected = pts @ M[:, :2].T + M[:, 2]
    got = stn.image_to_crop(torch.tensor(pts, dtype=torch.float32)[None], theta, CROP, hw)[0]
    assert np.allclose(got.numpy(), expected, atol=1e-3)


def test_stn_starts_at_the_full_frame_and_at_the_prior():
    torch.manual_seed(0)
    net = stn.SpatialTransformer(32).eval()
    image = torch.rand(2, 3, FRAME, FRAME)
    theta = net(image)
    assert torch.allclose(theta, torch.eye(2, 3).expand(2, 2, 3), atol=1e-6)
    crop = stn.sample_crop(image, theta, CROP)
    assert torch.allclose(crop, F.interpolate(image, size=(CROP, CROP), mode="bilinear", align_corners=False),
                          atol=1e-5)
    wide = torch.rand(1, 3, 60, 120)
    assert torch.allclose(net(wide), torch.tensor([[[1.0, 0, 0], [0, 2.0, 0]]]), atol=1e-6)
    prior = similarity_theta(1.5, 0.2, (40.0, 50.0), (FRAME, FRAME)).expand(2, 2, 3)
    assert torch.allclose(net(image, prior), prior, atol=1e-6)
    affine = stn.SpatialTransformer(32, affine=True).eval()
    assert torch.allclose(affine(image, prior), prior, atol=1e-6)


def test_stn_passes_refine_their_own_crop():
    torch.manual_seed(0)
    net = stn.SpatialTransformer(32, iterations=3).eval()
    randomise(net)
    image = torch.rand(2, 3, FRAME, FRAME)
    with torch.no_grad():
        thetas = net.passes(image)
        assert len(thetas) == 3 and torch.equal(net(image), thetas[-1])
        # Each pass is one refinement of the previous pass's crop, by the same weights.
        single = stn.SpatialTransformer(32, iterations=1).eval()
        single.load_state_dict(net.state_dict())
        assert torch.allclose(single(image, thetas[0]), thetas[1], atol=1e-6)
    with pytest.raises(ValueError, match="at least 1"):
        stn.SpatialTransformer(32, iterations=0)


def test_stn_wide_view_joins_a_larger_view_of_its_first_crop():
    """The first pass's gate picks the view whose map peaks higher; the wide view's crop has its scale over the
    zoom; from a crop of the frame the wide view is off."""
    torch.manual_seed(0)
    net = stn.SpatialTransformer(32, iterations=2, wide_view=64).eval()
    randomise(net)
    image = torch.rand(2, 3, 64, 64)  # a frame no view is anti-aliased for (supersample_factor 1 for both)
    plain = stn.SpatialTransformer(32, iterations=2).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k != "wide_bias"})
    with torch.no_grad():
        net.wide_bias.fill_(-50.0)  # the wide view never leads: the plain STN
        assert torch.allclose(net(image), plain(image), atol=1e-5)
        net.wide_bias.fill_(50.0)  # the wide view leads: the plain STN's map of a 64 px view, zoomed out
        plain.input_size = 64
        wide = plain.passes(image)[0]
        first = net.passes(image)[0]
        assert torch.allclose(first[..., 2], wide[..., 2], atol=1e-5)  # same centre
        assert torch.allclose(first[..., :2], wide[..., :2] / 2, atol=1e-5)  # half the side
        plain.input_size = 32  # later passes look at the coarse view only
        assert torch.allclose(net.passes(image)[1], plain.passes(image, first)[0], atol=1e-5)
        # From a crop of the frame (a search start), not the whole frame, the wide view is off.
        net.wide_bias.fill_(0.0)
        crop = torch.tensor([[[0.5, 0.0, 0.2], [0.0, 0.5, -0.1]]]).expand(2, 2, 3)
        assert torch.allclose(net(image, crop), plain(image, crop), atol=1e-6)
        assert not torch.allclose(net(image), plain(image), atol=1e-4)
    assert net.wide_bias.requires_grad
    for bad in ({"wide_view": 48}, {"wide_view": 32}, {"wide_view": 64, "affine": True}):
        with pytest.raises(ValueError, match="wide view"):
            stn.SpatialTransformer(32, **bad)


@pytest.mark.slow
def test_stn_learns_to_find_a_bright_square():
    """The STN's map head localises: a white square on noise, supervised by its box, within 150 steps."""
    torch.manual_seed(0)
    net = stn.SpatialTransformer(32, iterations=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.rand(n, 3, FRAME, FRAME, generator=g) * 0.3
        corner = torch.randint(0, FRAME - 32, (n, 2), generator=g)
        for i, (x, y) in enumerate(corner.tolist()):
            images[i, :, y:y + 32, x:x + 32] = 1.0
        boxes = torch.cat([corner, corner + 32], dim=1).float()
        return images, stn.theta_from_box(boxes, (FRAME, FRAME))

    for _ in range(150):
        images, target = batch()
        loss = (torch.stack(net.passes(images), 1) - target[:, None]).abs().sum((2, 3)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    images, target = batch(32)
    with torch.no_grad():
        error = (net.eval()(images) - target)[:, :, 2].abs().mean()  # crop centre, in half-frame units
        constant = (target[:, :, 2] - target[:, :, 2].mean(0)).abs().mean()
    assert error < 0.3 * constant, (float(error), float(constant))


def test_face_finder_crops_from_the_whole_frame_only():
    """With a finder, the crop from the whole frame is the finder's square crop (every pass's, for the losses);
    from a crop of the frame (tracking, a search start) the STN is unchanged; `find_face` (the export's) gives
    the finder's crop for every row."""
    torch.manual_seed(0)
    net = stn.SpatialTransformer(32, iterations=2, finder=True).eval()
    randomise(net)
    plain = stn.SpatialTransformer(32, iterations=2).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("finder.")})
    image = torch.rand(2, 3, FRAME, FRAME)
    crop = torch.tensor([[[0.5, 0.0, 0.2], [0.0, 0.5, -0.1]]]).expand(2, 2, 3)
    with torch.no_grad():
        reduced = F.avg_pool2d(image, stn.supersample_factor(FRAME, 32), ceil_mode=True)
        found = net.finder(reduced, (FRAME, FRAME))
        assert torch.equal(found[:, 0, 1], torch.zeros(2)) and torch.allclose(found[:, 0, 0], found[:, 1, 1])
        assert all(torch.allclose(theta, found, atol=1e-6) for theta in net.passes(image))
        assert torch.allclose(net(image, crop), plain(image, crop), atol=1e-6)
        mixed = torch.cat([stn.full_frame_theta(1, (FRAME, FRAME)), crop[:1]])
        out = net(image, mixed)
        assert torch.allclose(out[0], found[0], atol=1e-6) and torch.allclose(out[1], plain(image, mixed)[1], atol=1e-6)
        whole = stn.full_frame_theta(2, (FRAME, FRAME))
        assert torch.allclose(net.passes(image, whole, find_face=torch.tensor(True))[-1], found, atol=1e-6)
        assert torch.allclose(net.passes(image, whole, find_face=torch.tensor(False))[-1], found, atol=1e-6)


@pytest.mark.slow
def test_face_finder_learns_to_find_small_and_large_squares():
    """The finder's detection losses teach it to frame a bright square of 8 to 48 px anywhere in a 96 px frame."""
    torch.manual_seed(0)
    finder = stn.FaceFinder(width=8)
    opt = torch.optim.Adam(finder.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.rand(n, 3, FRAME, FRAME, generator=g) * 0.3
        sides = torch.randint(8, 49, (n,), generator=g)
        boxes = []
        for i, side in enumerate(sides.tolist()):
            x, y = torch.randint(0, FRAME - side + 1, (2,), generator=g).tolist()
            images[i, :, y:y + side, x:x + side] = 1.0
            boxes.append([x, y, x + side, y + side])
        return images, stn.theta_from_box(torch.tensor(boxes, dtype=torch.float32), (FRAME, FRAME))

    initial = None
    for _ in range(150):
        images, target = batch()
        losses = stn.finder_losses(finder, images, (FRAME, FRAME), target)
        initial = initial or {k: v.item() for k, v in losses.items()}
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    images, target = batch(32)
    with torch.no_grad():
        theta = finder.eval()(images, (FRAME, FRAME))
    centre_error = (theta[:, :, 2] - target[:, :, 2]).norm(dim=-1) / (2 * target[:, 0, 0])  # in crop sides
    side_ratio = theta[:, 0, 0] / target[:, 0, 0]
    assert float(centre_error.median()) < 0.25, centre_error
    assert 0.67 < float(side_ratio.median()) < 1.5, side_ratio
    assert losses["finder_map"].item() < 0.5 * initial["finder_map"]


@pytest.mark.slow
def test_export_skips_the_stn_passes_when_finding_the_face(tmp_path):
    """With a finder, the STN's passes sit in the else branch of an If on find_face, inside the If on direct_crop;
    the finder is computed only when not direct (no finder convolution in the main graph)."""
    import onnx

    model = small_model("full", stn_iterations=2, stn_finder=True).eval()
    graph = onnx.load(str(export_onnx(model, tmp_path / "finder.onnx", (FRAME, FRAME)))).graph
    assert "find_face" in [i.name for i in graph.input]
    main_convs = sum(n.op_type == "Conv" for n in graph.node)
    assert main_convs == sum(n.op_type == "Conv" for n in onnx.load(str(export_onnx(
        small_model("full", stn_iterations=2), tmp_path / "plain.onnx", (FRAME, FRAME)))).graph.node)
    direct = next(n for n in graph.node if n.name == "skip_stn_when_direct")
    stn_branch = next(a.g for a in direct.attribute if a.name == "else_branch")
    finding = next(n for n in stn_branch.node if n.name == "skip_stn_when_finding")
    assert list(finding.input) == ["find_face"]
    branches = {a.name: a.g for a in finding.attribute}
    assert [n.op_type for n in branches["then_branch"].node] == ["Identity"]
    assert {"Conv", "GridSample"} <= {n.op_type for n in branches["else_branch"].node}  # the STN's passes
    assert "Conv" in {n.op_type for n in stn_branch.node}  # the finder, before the If on find_face


def test_teacher_crops_replace_the_stn_crop_for_the_detector_only():
    model = small_model("full", stn_iterations=2).eval()
    randomise(model.stn)
    image, queries = torch.rand(3, 3, FRAME, FRAME), torch.randn(12, 3) * 4
    teacher = box_theta(3)
    mask = torch.tensor([True, False, True])
    with torch.no_grad():
        plain = model(image, queries)
        mixed = model(image, queries, teacher_theta=teacher, teacher_mask=mask)
    assert mixed["stn_thetas"].shape == (3, 2, 2, 3)
    assert torch.equal(mixed["stn_thetas"], plain["stn_thetas"])  # the STN ran as usual
    assert torch.equal(mixed["theta"][mask], teacher[mask])
    assert torch.equal(mixed["theta"][~mask], plain["theta"][~mask])


def test_refine_2d_adds_a_residual_to_the_projection():
    model = small_model("full", refine_2d=True).eval()
    image, queries = torch.rand(2, 3, FRAME, FRAME), torch.randn(12, 3) * 4
    with torch.no_grad():
        out = model(image, queries)
        assert torch.allclose(out["points_2d"], out["points_2d_projected"])  # the residual starts at zero
        randomise(model.decoder.output_2d)
        out = model(image, queries)
    assert (out["points_2d"] - out["points_2d_projected"]).abs().max() > 0.1
    # The camera still reproduces the projection, not the refined points.
    K, R, t = out["K"], out["R"], out["t"]
    cam = out["points_3d"] @ R.transpose(1, 2) + t[:, None]
    projected = (cam @ K.transpose(1, 2))[..., :2] / (cam @ K.transpose(1, 2))[..., 2:]
    assert torch.allclose(projected, out["points_2d_projected"], atol=1e-2)


def test_spatial_readout_is_the_soft_argmax_of_the_heatmap():
    torch.manual_seed(0)
    readout = SpatialReadout(fine_channels=8, channels=16, hidden=32, stride=4).eval()
    fine, final, hidden = torch.rand(1, 8, 16, 16), torch.rand(1, 16, 4, 4), torch.randn(1, 3, 32)
    hot = torch.full((1, 3, 256), -30.0)
    hot[0, 0, 5 * 16 + 9] = 30.0  # row 5, column 9: the cell centred at (9.5, 5.5) x stride 4
    hot[0, 1, 0] = hot[0, 1, 1] = 30.0  # two equal peaks: their midpoint
    readout.heatmap_logits = lambda *args: hot
    with torch.no_grad():
        points = readout(hidden, fine, final)
    assert torch.allclose(points[0, 0], torch.tensor([38.0, 22.0]), atol=1e-3)
    assert torch.allclose(points[0, 1], torch.tensor([4.0, 2.0]), atol=1e-3)


def test_spatial_readout_starts_at_its_prior():
    """With flat logits (the fresh read-out) the point is the prior's Gaussian's mean: the 3D head's projection
    (away from the map's border, which cuts the Gaussian)."""
    readout = SpatialReadout(fine_channels=8, channels=16, hidden=32, stride=4).eval()
    prior = torch.tensor([[[30.0, 34.0], [41.0, 27.5]]])
    readout.heatmap_logits = lambda *args: torch.zeros(1, 2, 256)
    with torch.no_grad():
        points = readout(torch.zeros(1, 2, 32), torch.rand(1, 8, 16, 16), torch.rand(1, 16, 4, 4), prior=prior)
    assert (points - prior).abs().max() < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("head", ["2d", "3d"])
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_spatial_readout_on_every_backbone_and_head(backbone, head):
    model = small_model("full", backbone=backbone, head=head, spatial_stride=4).eval()
    image, queries = torch.rand(2, 3, FRAME, FRAME), torch.randn(20, 3) * 4
    with torch.no_grad():
        out = model(image, queries, style_ids=torch.tensor([0, 1]), normals=F.normalize(queries, dim=-1))
    assert out["points_2d"].shape == (2, 20, 2) and all(torch.isfinite(v).all() for v in out.values())
    assert ("points_2d_projected" in out) == (head == "3d")
    first, last = _fit(small_model("full", backbone=backbone, head=head, spatial_stride=4), 25)
    assert last < 0.6 * first, (first, last)


def test_stn_regulariser():
    hw = (FRAME, FRAME)
    assert stn.stn_regulariser(stn.full_frame_theta(2, hw), hw).item() == 0
    collapsed = torch.tensor([[[0.01, 0, 0], [0, 0.01, 0]]])
    off_frame = torch.tensor([[[0.3, 0, 1.8], [0, 0.3, 0]]])
    assert stn.stn_regulariser(collapsed, hw).item() > 0
    assert stn.stn_regulariser(off_frame, hw).item() > 0


# --- backbones ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_output(name):
    torch.manual_seed(0)
    net = create_backbone(name).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, CROP, CROP))
    assert out.shape == (2, net.out_channels, CROP // 32, CROP // 32)
    assert torch.isfinite(out).all()


def test_mobilenet_output_stride_16_doubles_the_map_with_the_same_weights():
    coarse, fine = create_backbone("mobilenet_small"), create_backbone("mobilenet_small", output_stride=16)
    fine.load_state_dict(coarse.state_dict())  # same names and shapes
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert coarse.eval()(x).shape[-2:] == (4, 4) and fine.eval()(x).shape[-2:] == (8, 8)
    with pytest.raises(ValueError, match="output_stride"):
        create_backbone("mobilenet_small", output_stride=8)


def test_backbone_registry_errors():
    with pytest.raises(KeyError, match="mobilenet_small"):
        create_backbone("nope")
    with pytest.raises(ValueError):
        from core.model.backbones import register_backbone
        register_backbone("resnet18")(lambda: None)


# --- the detector ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_forward_shapes(variant, backbone):
    model = small_model(variant, backbone=backbone).eval()
    image = torch.rand(2, 3, FRAME, FRAME)
    for n, queries in [(68, torch.randn(68, 3) * 4), (300, torch.randn(2, 300, 3) * 4)]:
        with torch.no_grad():
            out = run(model, image, queries, style_ids=torch.tensor([0, 1]), normals=F.normalize(queries, dim=-1))
        assert out["points_2d"].shape == (2, n, 2)
        assert out["points_crop"].shape == (2, n, 2)
        assert out["theta"].shape == (2, 2, 3)
        assert out["crop"].shape == (2, 3, CROP, CROP)
        if model.config.head == "3d":
            assert out["points_3d"].shape == (2, n, 3)
            assert out["K"].shape == (2, 3, 3) and out["R"].shape == (2, 3, 3) and out["t"].shape == (2, 3)
            assert out["visibility"].shape == (2, n)
        if model.config.semantic_correction:
            assert out["offsets"].shape == (2, n, 3 if model.config.head == "3d" else 2)
        assert all(torch.isfinite(v).all() for v in out.values())


def _fit(model: torch.nn.Module, steps: int) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(4, 3, FRAME, FRAME, generator=g)
    queries = torch.randn(24, 3, generator=g) * 4
    target = FRAME / 2 + 8 + 3.5 * queries[:, :2] * torch.tensor([1.0, -1.0]) + 3 * torch.sin(queries[:, 2:])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        out = run(model.train(), image, queries, style_ids=torch.tensor([0, 1, 2, 0]))
        loss = (out["points_2d"] - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], min(losses[-3:])


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_training_reduces_loss(variant):
    first, last = _fit(small_model(variant), 25)
    assert last < 0.6 * first, (first, last)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(set(BACKBONES) - {"mobilenet_small"}))
def test_training_reduces_loss_other_backbones(backbone):
    first, last = _fit(small_model("full", backbone=backbone), 25)
    assert last < 0.6 * first, (first, last)


def test_full_image_camera_reproduces_the_points():
    """Projecting points_3d with the returned (K, R, t) in the geometry convention gives points_2d."""
    model = small_model("full").eval()
    randomise(model.camera)
    randomise(model.decoder)
    randomise(model.stn)
    hw = (80, 120)
    image = torch.rand(2, 3, *hw)
    queries = torch.randn(50, 3) * 4
    prior = torch.cat([similarity_theta(1.3, 0.5, (60.0, 35.0), hw), similarity_theta(0.8, -1.0, (40.0, 50.0), hw)])
    with torch.no_grad():
        out = model(image, queries, prior_theta=prior, style_ids=torch.tensor([0, 3]))
    scale, angle, _ = stn.decompose_similarity(out["theta"], CROP, hw)
    assert (angle.abs() > 0.3).all()  # the crops really are rotated
    assert not torch.allclose(out["R"], torch.from_numpy(geometry.FRONTAL).float().expand(2, 3, 3), atol=0.05)
    for b in range(2):
        K, R, t = (out[k][b].double().numpy() for k in ("K", "R", "t"))
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-5)
        assert K[0, 2] == pytest.approx(hw[1] / 2, abs=1e-3) and K[1, 2] == pytest.approx(hw[0] / 2, abs=1e-3)
        expected = geometry.project_canonical(out["points_3d"][b].double().numpy(), K, R, t)
        assert np.abs(expected - out["points_2d"][b].double().numpy()).max() < 1e-3
    # focal: the crop's focal over the crop scale
    f_crop = geometry.focal_from_fov(50, CROP) * torch.exp(model.camera.mlp(
        model.backbone(out["crop"]).mean((2, 3)))[:, 0])
    assert torch.allclose(out["K"][:, 0, 0], f_crop / scale, rtol=1e-4)


def test_initial_3d_prediction_is_a_frontal_face_60cm_away():
    model = small_model("stn_3d").eval()
    queries = torch.tensor([[0.0, 0.0, 0.0], [3.0, 2.0, 10.0]])
    with torch.no_grad():
        out = model(torch.rand(1, 3, FRAME, FRAME), queries, normals=torch.tensor([[0, 0, 1.0], [0, 0, -1.0]]))
    assert torch.allclose(out["points_3d"][0], queries)
    assert torch.allclose(out["R"][0], torch.from_numpy(geometry.FRONTAL).float())
    assert torch.allclose(out["t"][0], torch.tensor([0.0, 0.0, 60.0]))
    assert out["points_2d"][0, 0].tolist() == pytest.approx([FRAME / 2, FRAME / 2], abs=1e-4)
    # +x canonical (subject's left) is image right; +y (up) is image up
    assert out["points_2d"][0, 1, 0] > FRAME / 2 and out["points_2d"][0, 1, 1] < FRAME / 2
    # fov of 50 degrees across the full frame (the crop is the frame)
    assert out["K"][0, 0, 0].item() == pytest.approx(geometry.focal_from_fov(50, FRAME), rel=1e-5)
    assert out["visibility"][0, 0] > 0.99 and out["visibility"][0, 1] < 0.01


def test_style_zero_gives_zero_offsets():
    model = small_model("full").eval()
    randomise(model.correction)
    queries = torch.randn(40, 3) * 4
    with torch.no_grad():
        out = model(torch.rand(3, 3, FRAME, FRAME), queries, style_ids=torch.tensor([0, 2, 0]))
        default = model(torch.rand(1, 3, FRAME, FRAME), queries)
    assert (out["offsets"][[0, 2]] == 0).all()
    assert out["offsets"][1].abs().max() > 1e-3
    assert (default["offsets"] == 0).all()


def test_depth_order_visibility():
    # two points on the same pixel: the far one is hidden; a third, alone, stays visible
    px = torch.tensor([[[10.0, 10.0], [10.5, 10.0], [40.0, 40.0]]])
    depth = torch.tensor([[50.0, 55.0, 60.0]])
    vis = occlusion_visibility(px, depth, radius_px=3.0, margin_cm=1.0)
    assert vis[0, 0] > 0.99 and vis[0, 1] < 0.05 and vis[0, 2] > 0.99
    model = small_model("full", depth_test=True).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, FRAME, FRAME), torch.randn(30, 3) * 4)
    assert out["visibility"].shape == (1, 30)


def test_fourier_encoding_keeps_raw_coordinates():
    enc = FourierEncoding(bands=3)
    q = torch.tensor([[1.0, -2.0, 5.0]])
    out = enc(q)
    assert out.shape == (1, enc.out_dim) and enc.out_dim == 21
    assert torch.allclose(out[0, :3], q[0] / 10)


def test_create_model_and_errors():
    assert create_model().config == MODEL_VARIANTS["full"]
    model = create_model({"variant": "stn_2d", "backbone": "resnet18", "crop_size": 64})
    assert model.config.head == "2d" and model.config.backbone == "resnet18"
    with pytest.raises(KeyError):
        create_model("nope")
    with pytest.raises(ValueError, match="head"):
        ModelConfig(head="4d")
    with pytest.raises(ValueError, match="crop_theta"):
        small_model("baseline_2d")(torch.rand(1, 3, FRAME, FRAME), torch.randn(5, 3))


def test_variants_without_attention_or_with_affine_stn():
    image, queries = torch.rand(2, 3, FRAME, FRAME), torch.randn(10, 3)
    for overrides in ({"attention": False}, {"stn_affine": True}, {"refine_2d": True, "stn_iterations": 2}):
        with torch.no_grad():
            out = small_model("full", **overrides).eval()(image, queries)
        assert out["points_2d"].shape == (2, 10, 2)


# --- ONNX --------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("overrides", [{}, {"stn_iterations": 2, "refine_2d": True,
                                             "backbone_kwargs": {"output_stride": 16}},
                                       {"stn_iterations": 2, "stn_wide_view": 64},
                                       {"stn_iterations": 2, "stn_finder": True},
                                       {"stn_iterations": 2, "stn_finder": True, "spatial_stride": 4,
                                        "backbone_kwargs": {"output_stride": 16}}],
                         ids=["full", "default_model", "stn_wide_view", "stn_finder", "spatial_readout"])
def test_onnx_export_matches_torch(tmp_path, overrides):
    ort = pytest.importorskip("onnxruntime")
    model = small_model("full", **overrides).eval()
    randomise(model)
    path = export_onnx(model, tmp_path / "model.onnx", (FRAME, FRAME))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = onnx_io_names(model.config)
    assert [i.name for i in session.get_inputs()] == inputs
    for n, hw, batch in [(68, (FRAME, FRAME), 1), (500, (FRAME, FRAME), 2), (68, (72, 128), 2)]:
        g = torch.Generator().manual_seed(n)
        image = torch.rand(batch, 3, *hw, generator=g)
        queries = torch.randn(n, 3, generator=g) * 4
        normals = F.normalize(torch.randn(n, 3, generator=g), dim=-1)
        prior = torch.cat([stn.full_frame_theta(1, hw), similarity_theta(1.2, 0.3, (50.0, 40.0), hw)])[:batch]
        styles = torch.tensor([1, 0])[:batch]
        for direct in (False, True):  # the STN from a prior, or the prior as the crop
            with torch.no_grad():
                expected = model(image, queries, style_ids=styles, normals=normals,
                                 **{"crop_theta" if direct else "prior_theta": prior})
            expected["theta_out"] = expected["theta"]
            expected["confidence"] = torch.sigmoid(expected["face_logit"])
            feed = {"image": image.numpy(), "queries": queries.numpy(), "theta": prior.numpy(),
                    "normals": normals.numpy(), "style_ids": styles.numpy(), "direct_crop": np.array(direct),
                    # a direct run's pixels, as the runtime samples them; unread without direct_crop
                    "crop": stn.sample_crop(image, prior, model.crop_size).numpy() if direct
                    else np.zeros((batch, 3, model.crop_size, model.crop_size), np.float32),
                    # with a finder: every row starts from the whole frame (here the one-row batches)
                    "find_face": np.array(not direct and batch == 1)}
            feed = {k: v for k, v in feed.items() if k in inputs}
            got = dict(zip(outputs, session.run(outputs, feed)))
            assert np.abs(got["points_2d"] - expected["points_2d"].numpy()).max() < 1e-3
            for name in outputs:
                assert got[name].shape == tuple(expected[name].shape)
                assert np.allclose(got[name], expected[name].numpy(), atol=1e-3, rtol=1e-4), (name, direct)
