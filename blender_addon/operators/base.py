"""A modal-timer base for long jobs: a chunk of work per timer tick, progress in the status bar, Esc cancels.

A subclass implements three methods; the base runs them interactively (invoke -> modal ticks) or blocking
(execute: from scripts, in background mode, and wherever no window exists):

    job_start(context) -> bool        set up (False: nothing to do, after reporting why)
    job_step(context) -> bool         one chunk of work; True when finished
    job_finish(context, cancelled)    keep what was done (also after Esc) and report

Errors never reach Blender's UI as exceptions: a subclass raises JobError with a message for the user, which is
reported with `self.report({'ERROR'}, ...)`; anything unexpected is reported with its type as well.
"""
from __future__ import annotations

import traceback

import bpy

from .. import strings


def report_unexpected(operator: bpy.types.Operator, exc: Exception) -> None:
    """A bug is printed to the console and reported in Blender's info area, never raised into the UI."""
    traceback.print_exc()
    operator.report({"ERROR"}, strings.ERR_UNEXPECTED.format(kind=type(exc).__name__, detail=exc))


class JobError(Exception):
    """A failure the user can act on; its message is shown as is."""


class ModalJobOperator(bpy.types.Operator):
    """Base class, never registered itself (no bl_idname)."""

    timer_interval = 0.01   # seconds between ticks: the UI redraws between two chunks
    progress_steps = 1000   # resolution of the window manager's progress indicator

    # --- to implement ---------------------------------------------------------------------------------------
    def job_start(self, context: bpy.types.Context) -> bool:
        raise NotImplementedError

    def job_step(self, context: bpy.types.Context) -> bool:
        raise NotImplementedError

    def job_finish(self, context: bpy.types.Context, cancelled: bool) -> None:
        raise NotImplementedError

    def job_progress(self) -> float:
        """0..1 for the progress indicator."""
        return 0.0

    def job_status(self) -> str:
        """One line for the status bar."""
        return ""

    # --- the machinery ----------------------------------------------------------------------------------------
    def execute(self, context: bpy.types.Context) -> set[str]:
        """Run every chunk now (no window needed): the same steps the modal ticks run."""
        if not self._guarded(context, self.job_start):
            return {"CANCELLED"}
        while True:
            done = self._guarded(context, self.job_step)
            if done is None:
                return self._fail(context)
            if done:
                break
        return self._end(context, cancelled=False)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window is None:  # no window to tick in (background mode): work now
            return self.execute(context)
        if not self._guarded(context, self.job_start):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(self.timer_interval, window=context.window)
        wm.progress_begin(0, self.progress_steps)
        wm.modal_handler_add(self)
        self._set_status(context, self.job_status())
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC" and event.value == "PRESS":
            return self._end(context, cancelled=True)
        # Timer events of other operators reach this handler too; Blender compares the wrapped pointers.
        if event.type != "TIMER" or event.timer != getattr(self, "_timer", None):
            return {"PASS_THROUGH"}  # the UI stays usable while the job runs
        return self.tick(context)

    def tick(self, context: bpy.types.Context) -> set[str]:
        """One timer tick: a chunk of work and a progress update."""
        done = self._guarded(context, self.job_step)
        if done is None:
            return self._fail(context)
        if done:
            return self._end(context, cancelled=False)
        context.window_manager.progress_update(int(self.job_progress() * self.progress_steps))
        self._set_status(context, self.job_status())
        return {"RUNNING_MODAL"}

    def cancel(self, context: bpy.types.Context) -> None:
        """Called by Blender when the modal operator is stopped from outside (file loaded, window closed)."""
        self._end(context, cancelled=True)

    def _guarded(self, context: bpy.types.Context, method):  # noqa: ANN001, ANN202
        """method(context), or None after reporting the error: exceptions stop here, never in Blender's UI."""
        try:
            return method(context)
        except JobError as exc:
            self.report({"ERROR"}, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must still end the job cleanly and be reported
            report_unexpected(self, exc)
        return None

    def _fail(self, context: bpy.types.Context) -> set[str]:
        self._end(context, cancelled=True, failed=True)
        return {"CANCELLED"}

    def _end(self, context: bpy.types.Context, cancelled: bool, failed: bool = False) -> set[str]:
        if getattr(self, "_ended", False):  # Esc and Blender's cancel() may both arrive
            return {"CANCELLED"}
        self._ended = True
        wm = context.window_manager
        timer = getattr(self, "_timer", None)
        if timer is not None:
            wm.event_timer_remove(timer)
            self._timer = None
            wm.progress_end()
        self._set_status(context, None)
        self._guarded(context, lambda ctx: self.job_finish(ctx, cancelled or failed))
        return {"CANCELLED"} if cancelled or failed else {"FINISHED"}

    @staticmethod
    def _set_status(context: bpy.types.Context, text: str | None) -> None:
        workspace = getattr(context, "workspace", None)
        if workspace is not None and context.window is not None:
            workspace.status_text_set(text)
