"""Each pool image's classifier input as a ``strategies.PixelFeatures``: the feature map entering
the decode head's last 1x1 classifier, and the mapping of the image's pixels to it, composed of the
same steps mmseg's ``predict_by_feat`` + ``postprocess_result`` apply to the logits
(``logit_resize``): a bilinear resize to the padded input, the padding cropped, a flip undone, a
bilinear resize to ``ori_shape``. Each step acts on rows and on columns separately, so the mapping
is one ``[H, h]`` and one ``[W, w]`` matrix per image (see ``strategies/pixel_features.py``);
the classifier and the resize being linear, the classifier applied to a pixel's feature vector
gives that pixel's logits, as the MC pass computes them.
"""
from __future__ import annotations

import torch

from benchmark.model.logit_resize import output_groups
from strategies import PixelFeatures
from strategies.pixel_features import interpolation_matrix


def axis_mapping(n_feature: int, n_padded: int, crop: tuple[int, int], flipped: bool, n_original: int,
                 align_corners: bool, device) -> torch.Tensor:
    """``[n_original, n_feature]`` along one axis: resize to the padded size, crop ``(before,
    after)``, reverse if ``flipped``, resize to the original size (float64)."""
    options = dict(dtype=torch.float64, device=device)
    matrix = interpolation_matrix(n_feature, n_padded, align_corners, **options)  # [n_padded, n_feature]
    matrix = matrix[crop[0]:n_padded - crop[1]]
    if flipped:
        matrix = matrix.flip(0)
    if matrix.shape[0] != n_original:
        matrix = interpolation_matrix(matrix.shape[0], n_original, align_corners, **options) @ matrix
    return matrix


def image_features(feat: torch.Tensor, metas: list[dict], padded: tuple[int, int],
                   align_corners: bool) -> list[PixelFeatures]:
    """One ``PixelFeatures`` per image of a batch's classifier input ``feat [B, d, h, w]``."""
    out: list = [None] * len(metas)
    _, _, h, w = feat.shape
    for indices, ((left, right, top, bottom), flip, original) in output_groups(metas):
        horizontal, vertical = flip == "horizontal", flip is not None and flip != "horizontal"
        rows = axis_mapping(h, padded[0], (top, bottom), vertical, original[0], align_corners, feat.device)
        cols = axis_mapping(w, padded[1], (left, right), horizontal, original[1], align_corners, feat.device)
        for i in indices:
            out[i] = PixelFeatures(feat[i], rows, cols)
    return out


def num_classes(model) -> int:
    """The classes of the model's posterior (the decode head's output channels)."""
    return int(model.decode_head.out_channels)
