"""core.runtime.track: the job the add-on's Track operator and batch command line drive, without Blender.

The bundled model on a short clip of smooth noise, with the face threshold at 0 so every frame is a face: this
checks the job's plumbing (cancelling, the whole-clip smoothing, a clip decoded only in part), not the model.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.runtime.track import TrackingSettings, TrackJob, track
from core.runtime.tracker import FaceTracker, smooth_clip
from core.runtime.video import open_frames
from media_fixtures import noise_frames, write_truncated_mp4

pytestmark = pytest.mark.slow  # the bundled model on whole clips

MODEL = Path(__file__).resolve().parents[1] / "assets" / "models" / "default.onnx"
FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "noise.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (128, 128))
    for frame in noise_frames(FRAMES, (128, 128)):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def settings() -> TrackingSettings:
    return TrackingSettings(model_path=str(MODEL), threshold=0.0, threads=1)


def test_job_cancelled_keeps_the_tracked_frames(clip, settings) -> None:
    """The job object the operator drives, cancelled directly."""
    job = TrackJob(clip, settings)
    assert not job.tracker.mirror
    assert TrackJob(clip, dataclasses.replace(settings, mirror=True)).tracker.mirror
    assert not job.step(3)
    job.cancel()
    assert job.step(1) and job.results().num_frames == 3


def test_job_results_are_the_whole_clip_smoothed(clip, settings) -> None:
    """Run to the end: the results are the whole range smoothed forwards and backwards from the tracker's
    unsmoothed faces (smooth_clip), not the tracker's causal output."""
    job = TrackJob(clip, settings)
    while not job.step(4):
        pass
    tracker = FaceTracker(job.model, job.layout, settings.semantics, smoothing=job.tracker.smoothing,
                          fps=job.fps or None)
    raw, causal = [], []
    for frame in open_frames(clip):
        causal.append(tracker.update(frame).landmarks_2d)
        raw.append(tracker.raw_face)
    expected = smooth_clip(raw, [tracker.timestamp(k) for k in range(len(raw))], tracker.smoothing)
    got = job.results()
    assert [face.found for face in expected] == got.has_face.tolist() and got.has_face.any()
    assert np.allclose(got.landmarks_2d[got.has_face], np.stack([f.landmarks_2d for f in expected if f.found]))
    assert not np.allclose(got.landmarks_2d[got.has_face], np.stack(causal)[got.has_face], atol=1e-3)


def test_partly_decodable_clip_counts_its_missing_frames(settings, tmp_path) -> None:
    """A truncated mp4 (issue 20, item 4): what the Track operator's job and the batch get."""
    cut = write_truncated_mp4(tmp_path / "cut.mp4")
    results = track(cut, settings)
    assert 0 < results.num_frames < 30 and results.frames_missing == 30 - results.num_frames
