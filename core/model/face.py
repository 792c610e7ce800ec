"""The ICT face model in torch: batched, differentiable evaluation of identity and expression weights."""
from __future__ import annotations

import torch
from torch import nn

from ..facemodel import FaceModel, load_facemodel


class TorchFaceModel(nn.Module):
    """vertices = neutral + identity @ identity_basis + expression @ expression_basis, for a batch.

    `vertex_ids` keeps only some vertices (e.g. those a layout uses) to save memory and time.
    """

    def __init__(self, model: FaceModel | None = None, vertex_ids: torch.Tensor | None = None) -> None:
        super().__init__()
        model = model or load_facemodel()
        ids = slice(None) if vertex_ids is None else torch.as_tensor(vertex_ids, dtype=torch.long).numpy()
        self.register_buffer("neutral", torch.from_numpy(model.neutral[ids].copy()))
        self.register_buffer("identity_basis", torch.from_numpy(model.identity_basis[:, ids].copy()))
        self.register_buffer("expression_basis", torch.from_numpy(model.expression_basis[:, ids].copy()))

    def forward(self, identity: torch.Tensor | None = None, expression: torch.Tensor | None = None) -> torch.Tensor:
        """(B, num_identity) and/or (B, num_expression) weights -> (B, V, 3) vertices in cm."""
        batch = (identity if identity is not None else expression).shape[0]
        verts = self.neutral.expand(batch, -1, -1)
        if identity is not None:
            k = identity.shape[1]
            verts = verts + torch.einsum("bk,kvd->bvd", identity, self.identity_basis[:k])
        if expression is not None:
            k = expression.shape[1]
            verts = verts + torch.einsum("bk,kvd->bvd", expression, self.expression_basis[:k])
        return verts
