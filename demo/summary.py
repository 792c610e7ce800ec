"""The demo's accuracy summary: the tracked sample clip (the add-on's results arrays) against the clip's ground
truth, as a few lines of text: detection, landmark error and jitter, head rotation, focal length and the ARKit
expression weights the rig keys."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import geometry
from core.layouts import load_layout
from training import metrics


def summarise(results_npz: Path, truth_npz: Path) -> str:
    """Accuracy of the tracked clip against its ground truth, as a few lines of text."""
    from training.synth.sequences import load_sequence

    with np.load(results_npz) as d:
        tracked = {key: d[key] for key in d.files}  # each array read once
    truth = load_sequence(truth_npz)
    layout = load_layout(str(tracked["layout"]))
    found = tracked["has_face"].astype(bool)
    gt_2d = np.stack([f.truth(layout).points_2d for f in truth])
    lines = [f"frames: {len(found)}, face found in {found.sum()} ({100 * found.mean():.0f}%)"]
    if found.any():
        pred, gt = tracked["landmarks_2d"][found], gt_2d[found]
        inter_ocular = metrics.inter_ocular_distance(gt, layout.name)
        nme = metrics.nme(pred, gt, inter_ocular)
        jitter = metrics.jitter(pred, gt, inter_ocular)  # over the frames with a face
        pose = [geometry.rotation_angle_deg(r, f.R) for r, f, ok in zip(tracked["R"], truth, found) if ok]
        focal = [100 * abs(k[0, 0] - f.K[0, 0]) / f.K[0, 0] for k, f, ok in zip(tracked["K"], truth, found) if ok]
        lines += [f"landmark NME (inter-ocular): mean {np.mean(nme):.3f}, median {np.median(nme):.3f}",
                  f"jitter of the error (first difference, inter-ocular): {jitter:.4f}",
                  f"head rotation error: mean {np.mean(pose):.1f} deg, median {np.median(pose):.1f} deg",
                  f"focal length error: median {np.median(focal):.1f}%"]
        lines.append(expression_summary(tracked, truth, layout, found))
    return "\n".join(lines)


def expression_summary(tracked, truth, layout, found: np.ndarray) -> str:  # noqa: ANN001
    """Error of the expression weights the rig keys (core.solve.solve_tracked, as the add-on does) against the
    truth, beside a neutral face's (all weights 0): the error a solve that reads nothing from the clip would have."""
    from core.solve import solve_tracked

    shot = solve_tracked(tracked["landmarks_3d"][found], layout, np.ones(found.sum(), bool),
                         tracked["landmarks_2d"][found], tracked["K"][found], tracked["R"][found],
                         tracked["t"][found], str(tracked.get("semantics", "canonical")))
    gt = np.stack([f.expression for f, ok in zip(truth, found) if ok])
    error = np.abs(shot.expressions - gt)
    # Shapes the clip actually uses (peak weight over 0.2) say more than the many that stay near zero.
    used = gt.max(axis=0) > 0.2
    return (f"expression weights (57 ICT shapes, 0..1): mean abs error {np.nanmean(error):.3f}, "
            f"on the {used.sum()} shapes the clip uses {np.nanmean(error[:, used]):.3f} "
            f"(a neutral face: {np.mean(gt):.3f}, {np.mean(gt[:, used]):.3f})")
