"""The project's main job, `python -m demo` (what `bash scripts/demo.sh` runs): render the bundled sample clip with
per-frame ground truth, track it with the bundled default model through the Blender add-on's batch path, and print
a one-screen accuracy summary against the truth. `clip` makes and tracks the sample clip, `summary` scores the
tracking, `__main__` is the command."""
