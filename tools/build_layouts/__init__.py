"""Builders of the built-in landmark layouts in assets/layouts/, from the face model (and, for frl, annotated
photos), run as `python -m tools.build_layouts [NAME ...]`: one module per layout (`ibug68`, `wflw98`, `dense`,
`frl`), each with its `build_<name>()` returning the Layout; `__main__` writes them. How each is placed is
described in assets/layouts/README.md."""
