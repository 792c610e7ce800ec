"""ONNX export of the landmark detector: a trace with the contract's names, then graph surgery for speed.

`export_onnx` traces the detector (TorchScript exporter) with the inputs and outputs of `core.onnx_contract`, then
rewrites the graph so that what a run does not need is not computed: the trace selects between a given and a
computed value with Where, which computes both, and the surgery (`_move_into_if`) moves the computed side into the
else branch of an If on the bool input that selects it (the STN and the crop's sampling on `direct_crop`, the STN's
passes on `find_face`). `training.export` is the command that writes the shipped file and its metadata.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..onnx_contract import DIRECT_CROP_INPUT, DIRECT_CROP_PIXELS_INPUT, FIND_FACE_INPUT, onnx_io_names
from .detector import LandmarkDetector
from .stn import full_frame_theta, theta_from_box


class _ExportWrapper(nn.Module):
    """Fixed positional inputs and outputs for ONNX; see `onnx_io_names`."""

    def __init__(self, model: LandmarkDetector) -> None:
        super().__init__()
        self.model = model
        self.inputs, self.outputs = onnx_io_names(model.config)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kwargs = dict(zip(self.inputs, args))
        theta = kwargs.pop("theta")
        if self.model.config.stn:
            # direct_crop picks theta itself over the STN's crop: the training-time teacher switch.
            direct = kwargs.pop(DIRECT_CROP_INPUT).reshape(1).expand(theta.shape[0])
            kwargs.update(prior_theta=theta, teacher_theta=theta, teacher_mask=direct,
                          teacher_crop=kwargs.pop(DIRECT_CROP_PIXELS_INPUT))
            if self.model.config.stn_finder:
                kwargs["find_face"] = kwargs.pop(FIND_FACE_INPUT)
        else:
            kwargs["crop_theta"] = theta
        out = self.model(**kwargs)
        out["theta_out"] = out["theta"]
        out["confidence"] = torch.sigmoid(out["face_logit"])
        return tuple(out[name] for name in self.outputs)


def export_onnx(model: LandmarkDetector, path: str | Path, image_hw: tuple[int, int] = (256, 256),
                opset: int = 17) -> Path:
    """Export with dynamic batch, frame size and number of queries (TorchScript exporter); see `onnx_io_names`.

    The STN's anti-aliasing factor is fixed to the one for `image_hw`: export at the footage's resolution.
    """
    path = Path(path)
    wrapper = _ExportWrapper(model).eval()
    h, w = image_hw
    examples = {"image": torch.rand(1, 3, h, w), "queries": torch.randn(68, 3) * 4,
                "normals": F.normalize(torch.randn(68, 3), dim=-1),
                "style_ids": torch.zeros(1, dtype=torch.long), DIRECT_CROP_INPUT: torch.tensor(False),
                DIRECT_CROP_PIXELS_INPUT: torch.zeros(1, 3, model.crop_size, model.crop_size),
                FIND_FACE_INPUT: torch.tensor(False)}
    examples["theta"] = (full_frame_theta(1, image_hw) if model.config.stn
                         else theta_from_box(torch.tensor([[w * 0.2, h * 0.2, w * 0.8, h * 0.8]]), image_hw))
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}, "queries": {0: "num_queries"},
               "theta": {0: "batch"}, "normals": {0: "num_queries"}, "style_ids": {0: "batch"},
               DIRECT_CROP_PIXELS_INPUT: {0: "batch"},
               "points_2d": {0: "batch", 1: "num_queries"}, "theta_out": {0: "batch"}, "confidence": {0: "batch"},
               "points_3d": {0: "batch", 1: "num_queries"}, "K": {0: "batch"}, "R": {0: "batch"}, "t": {0: "batch"},
               "visibility": {0: "batch", 1: "num_queries"}}
    with torch.no_grad(), warnings.catch_warnings():
        # Expected: the STN's supersampling factor is a Python int, fixed to the one for `image_hw`.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is deliberate (TorchScript exporter)
        torch.onnx.export(wrapper, tuple(examples[name] for name in wrapper.inputs), str(path), dynamo=False,
                          opset_version=opset, input_names=wrapper.inputs, output_names=wrapper.outputs,
                          dynamic_axes={k: v for k, v in dynamic.items() if k in wrapper.inputs + wrapper.outputs})
    if model.config.stn:
        _branch_on_direct(path)
    return path


def _branch_on_find_face(graph: Any) -> None:
    """Move the STN's passes into the else branch of an If on `find_face` (see FIND_FACE_INPUT): the trace
    selects the finder's crop over the passes' with Where(find_face, found, passes), which computes both."""
    producer = {out: node for node in graph.node for out in node.output}

    def reads_find_face(value: str, depth: int = 3) -> bool:
        node = producer.get(value)
        return value == FIND_FACE_INPUT or (node is not None and depth > 0
                                            and any(reads_find_face(v, depth - 1) for v in node.input))

    wheres = [n for n in graph.node if n.op_type == "Where" and reads_find_face(n.input[0])]
    if len(wheres) != 1:
        raise RuntimeError(f"expected one selection on '{FIND_FACE_INPUT}' in the exported graph, found {len(wheres)}")
    _move_into_if(graph, wheres[0], "skip_stn_when_finding", FIND_FACE_INPUT)


def _branch_on_direct(path: Path) -> None:
    """Rewrite the exported graph so that the STN and the crop's sampling run only when `direct_crop` is false.

    The trace selects with Where(direct_crop, given, computed) twice: theta (the given crop or the STN's) and the
    crop's pixels (the given `crop` or sampled at theta), which computes both either way. The nodes that only feed
    a computed value move into the else branch of an If on `direct_crop`, the given value is the then branch; the
    detector stays in the main graph, which onnxruntime optimises fully (it does not inside an If: the whole graph
    there ran markedly slower). A direct run then computes neither the STN nor a GridSample.
    """
    import onnx

    proto = onnx.load(str(path))
    graph = proto.graph
    if FIND_FACE_INPUT in {i.name for i in graph.input}:
        _branch_on_find_face(graph)  # first: its If then moves, with the rest of the STN, into the direct If
    for given, name in (("theta", "skip_stn_when_direct"), (DIRECT_CROP_PIXELS_INPUT, "skip_crop_when_direct")):
        wheres = [n for n in graph.node if n.op_type == "Where" and n.input[1] == given]
        if len(wheres) != 1:
            raise RuntimeError(f"expected one selection of '{given}' in the exported graph, found {len(wheres)}")
        _move_into_if(graph, wheres[0], name, DIRECT_CROP_INPUT)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _reads(node: Any) -> set[str]:
    """The values a node reads: its inputs, and for an If the outer values its branches use."""
    values = set(node.input)
    for attribute in node.attribute:
        if attribute.g.node:
            inner = {out for n in attribute.g.node for out in n.output}
            values |= {v for n in attribute.g.node for v in _reads(n)} - inner
    return values - {""}


def _move_into_if(graph: Any, where: Any, name: str, condition: str) -> None:
    """Replace `where` (Where(mask, given, computed)) by If(condition, given, computed), `condition` the bool
    scalar graph input the mask is made of, moving the nodes that only feed `computed` into the else branch."""
    import onnx
    from onnx import helper

    computed = where.input[2]
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for value in _reads(node):
            consumers.setdefault(value, []).append(node)
    # The computed value and its ancestors, less any node whose output is used elsewhere (repeated until stable).
    def ancestors(value: str) -> dict[int, Any]:
        found: dict[int, Any] = {}
        stack = [value]
        while stack:
            node = producer.get(stack.pop())
            if node is not None and id(node) not in found:
                found[id(node)] = node
                stack.extend(_reads(node))
        return found

    # What `given` needs stays outside (the then branch reads it).
    given_needs = ancestors(where.input[1])
    moved = {key: node for key, node in ancestors(computed).items() if key not in given_needs}
    graph_outputs = {o.name for o in graph.output}
    changed = True
    while changed:
        changed = False
        for key, node in list(moved.items()):
            used_outside = any(out in graph_outputs or any(id(c) not in moved and c is not where
                                                          for c in consumers.get(out, [])) for out in node.output)
            if used_outside and computed not in node.output:
                del moved[key]
                changed = True
    moved_outputs = {out for node in moved.values() for out in node.output}
    kept = [n for n in graph.node if id(n) not in moved]
    if any(_reads(n) & moved_outputs for n in kept if n is not where):
        raise RuntimeError(f"{name}: the nodes of {computed} could not be separated from the rest of the graph")

    def branch(branch_name: str, nodes: list[Any], value: str) -> Any:
        out = f"{branch_name}_out"
        return helper.make_graph(nodes + [helper.make_node("Identity", [value], [out])], branch_name, [],
                                 [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)])

    select = helper.make_node("If", [condition], list(where.output), name=name,
                              then_branch=branch(f"{name}_given", [], where.input[1]),
                              else_branch=branch(f"{name}_computed", [n for n in graph.node if id(n) in moved],
                                                 computed))
    nodes = [select if n is where else n for n in kept]
    # The mask's nodes fed only the Where: drop whatever no longer feeds anything (they would still run).
    while True:
        read = {v for n in nodes for v in _reads(n)} | graph_outputs
        alive = [n for n in nodes if any(out in read for out in n.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    del graph.node[:]
    graph.node.extend(nodes)


def store_weights_fp16(proto: Any, min_elements: int = 16) -> int:
    """Store the float32 weights of an ONNX model as float16, each read through a Cast back to float32: the file
    halves, the graph still computes in float32 (onnxruntime folds the Casts when it loads the model). Weights of
    If branches are stored in their branch. Returns how many tensors were converted. Small tensors (fewer than
    `min_elements` values: shapes, scalars) stay as they are."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    converted = 0

    def convert(graph: Any) -> None:
        nonlocal converted
        casts = []
        for init in graph.initializer:
            if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
                continue
            name = init.name
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}__fp16")
            init.CopyFrom(half)
            casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
            converted += 1
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    convert(attribute.g)
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)

    convert(proto.graph)
    return converted
