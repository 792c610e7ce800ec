"""Infinite Landmarks core: canonical face, layouts, geometry and torch-free inference.

Nothing here imports bpy, and only `core.model` imports torch, so the Blender add-on ships this package as is.
"""
