"""Track operator (modal, chunked) and Clear Tracking: thin glue around core.runtime.track and tracking.py.

The operator reads the scene's settings, runs a core.runtime.track.TrackJob a few frames per timer tick, and on
finish or Esc stores what was tracked on the clip (and the markers, if asked). The CLI runs the same TrackJob in a
loop.
"""
from __future__ import annotations

import bpy

from core.runtime.track import TrackingError, TrackJob

from .. import strings, tracking
from ..preferences import addon_preferences
from ..properties import active_clip, scene_settings, to_tracking_settings
from .base import JobError, ModalJobOperator

FRAMES_PER_TICK = 2  # ~50-100 ms of inference per tick keeps the UI responsive on a laptop CPU

# Not a scene property: a flag saved in a .blend mid-run would block tracking after a reload.
_running_jobs = 0


def is_running() -> bool:
    return _running_jobs > 0


def _redraw_sidebars(context: bpy.types.Context) -> None:
    """Progress, status and markers changed: redraw the editors that show them (none in background mode)."""
    for area in getattr(context.screen, "areas", ()):
        if area.type in {"CLIP_EDITOR", "VIEW_3D"}:
            area.tag_redraw()


class IL_OT_track(ModalJobOperator):
    bl_idname = "infinite_landmarks.track"
    bl_label = strings.OP_TRACK
    bl_description = strings.OP_TRACK_DESC
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if active_clip(context) is None:
            cls.poll_message_set(strings.POLL_NO_CLIP)
            return False
        if is_running():
            cls.poll_message_set(strings.POLL_RUNNING)
            return False
        return True

    def job_start(self, context: bpy.types.Context) -> bool:
        clip = active_clip(context)
        props = scene_settings(context.scene)
        settings = to_tracking_settings(props, clip, addon_preferences(context))
        if not settings.layout:
            raise JobError(strings.ERR_NO_CUSTOM_LAYOUT)
        try:
            self._job = TrackJob(tracking.clip_footage_path(clip), settings,
                                 first_frame=tracking.clip_first_frame(clip), fps=clip.fps)
        except TrackingError as exc:
            raise JobError(str(exc)) from exc
        # Remember the clip by name and file: a pointer kept across ticks could dangle if the user deletes the clip,
        # and after loading another file a clip of the same name may be a different one.
        self._clip_name, self._clip_path = clip.name, clip.filepath
        self._write_markers = props.write_markers
        global _running_jobs
        _running_jobs += 1
        self._counted = True
        props.progress = 0.0
        props.status = self._job.status()
        return True

    def job_step(self, context: bpy.types.Context) -> bool:
        try:
            done = self._job.step(FRAMES_PER_TICK)
        except TrackingError as exc:
            raise JobError(str(exc)) from exc
        props = scene_settings(context.scene)
        props.progress = self._job.progress
        props.status = self._job.status()
        _redraw_sidebars(context)
        return done

    def job_progress(self) -> float:
        return self._job.progress

    def job_status(self) -> str:
        return self._job.status()

    def job_finish(self, context: bpy.types.Context, cancelled: bool) -> None:
        global _running_jobs
        if getattr(self, "_counted", False):
            _running_jobs -= 1
            self._counted = False
        props = scene_settings(context.scene)
        job = getattr(self, "_job", None)
        if job is None:
            return
        clip = bpy.data.movieclips.get(self._clip_name)
        if clip is None or clip.filepath != self._clip_path:
            props.status = strings.STATUS_CLIP_GONE
            self.report({"WARNING"}, strings.STATUS_CLIP_GONE)
            return
        results = job.results()
        if results.num_frames:
            stored = tracking.store_results(clip, results)
            if self._write_markers:
                tracking.write_markers(clip, stored)
        text = tracking.summary(results)
        if cancelled:
            props.status = strings.STATUS_CANCELLED.format(summary=text)
            self.report({"WARNING"}, props.status)
        elif results.frames_missing:
            props.status = strings.STATUS_INCOMPLETE.format(read=results.num_frames,
                                                            expected=results.frames_expected, summary=text)
            self.report({"WARNING"}, props.status)
        elif results.num_frames and not results.faces_found:
            props.status = strings.NO_FACE_FOUND.format(clip=clip.name)
            self.report({"WARNING"}, props.status)
        else:
            props.status = strings.STATUS_DONE.format(summary=text)
            self.report({"INFO"}, props.status)
        props.progress = 1.0 if not cancelled else props.progress
        _redraw_sidebars(context)


class IL_OT_clear_tracking(bpy.types.Operator):
    bl_idname = "infinite_landmarks.clear_tracking"
    bl_label = strings.OP_CLEAR
    bl_description = strings.OP_CLEAR_DESC
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        clip = active_clip(context)
        return clip is not None and tracking.load_results(clip) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        clip = active_clip(context)
        tracking.clear_results(clip)
        scene_settings(context.scene).status = strings.STATUS_CLEARED.format(clip=clip.name)
        self.report({"INFO"}, scene_settings(context.scene).status)
        return {"FINISHED"}


CLASSES = (IL_OT_track, IL_OT_clear_tracking)
