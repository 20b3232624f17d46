"""What a feature-based strategy receives with one image's posterior: the feature map entering the
classifier, at feature resolution, and which feature cells each of the image's pixels reads.

The posterior is at the image's original size ``[H, W]``; the classifier input is the decode head's
feature map ``[d, h, w]`` (h, w: the padded input over the output stride). mmseg's predict brings
the logits to the image by linear steps (a bilinear resize to the padded input, a crop of the
padding, a flip undone, a bilinear resize to the original size), and a bilinear resize is a linear
interpolation along the rows times one along the columns. So the whole way from feature map to
image is two matrices, ``rows [H, h]`` and ``cols [W, w]``:

    feature of pixel (y, x) = sum_ij rows[y, i] * cols[x, j] * map[:, i, j]        # [d]

which is exactly what the classifier would see at that pixel if it ran at full resolution (the 1x1
classifier and the resize are both linear, so the logits of pixel (y, x) are W @ feature + b).
Each row of ``rows`` and ``cols`` has a few nonzero weights (up to 4 for two bilinear resizes), so
``at`` gathers k pixels' vectors in O(k d) without bringing the map to full resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def interpolation_matrix(n_in: int, n_out: int, align_corners: bool = False, *,
                         dtype: torch.dtype = torch.float64,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """``[n_out, n_in]``: the linear interpolation ``F.interpolate`` applies along one axis of a
    bilinear resize from ``n_in`` to ``n_out`` samples (the identity when they are equal)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"axis sizes must be positive, got {n_in} -> {n_out}")
    eye = torch.eye(n_in, dtype=dtype, device=device).unsqueeze(0)  # [1, n_in channels, n_in]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=align_corners)[0].T.contiguous()


def _taps(matrix: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nonzero weights of ``matrix[rows]`` and their columns, ``[k, t]`` each (t: the most
    nonzeros any row of ``matrix`` has; shorter rows are padded with zero weights)."""
    taps = max(int((matrix != 0).sum(1).max()), 1)
    picked = matrix.index_select(0, rows)  # [k, n_in]
    columns = torch.topk(picked.abs(), taps, dim=1).indices
    return picked.gather(1, columns), columns


@dataclass(frozen=True)
class PixelFeatures:
    """One image's classifier input ``map [d, h, w]`` and its mapping to the image's pixels
    (``rows [H, h]``, ``cols [W, w]``: see the module docstring)."""

    map: torch.Tensor  # [d, h, w] at feature resolution
    rows: torch.Tensor  # [H, h]: how image row y mixes feature rows
    cols: torch.Tensor  # [W, w]: how image column x mixes feature columns

    def __post_init__(self) -> None:
        if self.map.dim() != 3:
            raise ValueError(f"a feature map is [d, h, w], got {tuple(self.map.shape)}")
        if self.rows.dim() != 2 or self.rows.shape[1] != self.map.shape[1]:
            raise ValueError(f"rows must be [H, {self.map.shape[1]}], got {tuple(self.rows.shape)}")
        if self.cols.dim() != 2 or self.cols.shape[1] != self.map.shape[2]:
            raise ValueError(f"cols must be [W, {self.map.shape[2]}], got {tuple(self.cols.shape)}")

    @classmethod
    def resized(cls, feature_map: torch.Tensor, size: tuple[int, int],
                align_corners: bool = False) -> PixelFeatures:
        """The mapping of one plain bilinear resize of ``feature_map`` to ``size`` (H, W)."""
        _, h, w = feature_map.shape
        options = dict(dtype=torch.float64, device=feature_map.device)
        return cls(feature_map, interpolation_matrix(h, int(size[0]), align_corners, **options),
                   interpolation_matrix(w, int(size[1]), align_corners, **options))

    @property
    def size(self) -> tuple[int, int]:
        """The image's (H, W): the posterior's spatial shape."""
        return self.rows.shape[0], self.cols.shape[0]

    @property
    def dim(self) -> int:
        """d, the length of a pixel's feature vector."""
        return self.map.shape[0]

    @property
    def device(self) -> torch.device:
        return self.map.device

    def at(self, index: torch.Tensor) -> torch.Tensor:
        """The feature vectors ``[k, d]`` (the map's dtype) of the pixels ``index`` (flat, row-major
        ``y * W + x``, LongTensor ``[k]``)."""
        index = index.to(self.device).reshape(-1)
        width = self.size[1]
        row_w, row_i = _taps(self.rows, index // width)  # [k, tr]
        col_w, col_i = _taps(self.cols, index % width)  # [k, tc]
        out = torch.zeros(index.numel(), self.dim, dtype=self.map.dtype, device=self.device)
        for a in range(row_i.shape[1]):
            for b in range(col_i.shape[1]):
                weight = (row_w[:, a] * col_w[:, b]).to(self.map.dtype)  # [k]
                out.addcmul_(self.map[:, row_i[:, a], col_i[:, b]].T, weight.unsqueeze(1))
        return out

    def full(self) -> torch.Tensor:
        """The whole map brought to the image, ``[d, H, W]`` (d x H x W memory: small images only)."""
        rows, cols = self.rows.to(self.map.dtype), self.cols.to(self.map.dtype)
        return torch.einsum("yi,dij,xj->dyx", rows, self.map, cols)
