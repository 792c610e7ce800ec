"""Builders of the repository's assets and doc pictures, run by hand when what they are built from changes:
`build_layouts` writes the built-in landmark layouts in assets/layouts/ from the face model (and the FRL photos),
`layout_pictures` draws those layouts on the canonical face for docs/layouts/, and `preview_accessories` draws
random synthetic heads with their accessories to look at the data engine's geometry. Nothing in core, training or
the add-on imports them."""
