"""The add-on's operators: tracking (track.py, with the modal base in base.py); rig and retarget (rig.py,
retarget.py). Each module exposes a `CLASSES` tuple that the add-on's register() registers in order."""
