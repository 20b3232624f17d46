# FPN with a narrow ResNet-18 (V1c) backbone, sized for a 2-core CPU (the embedded default).
# Inherits mmseg's own FPN model; plain BN, no pretrained weights. The FPNHead keeps mmseg's
# Dropout2d(p=0.1) + 1x1 conv_seg: the place of last-layer MC dropout.
_base_ = ['mmseg::_base_/models/fpn_r50.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad every batch (train and test) to a multiple of 32; presets with crops set size= instead
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    decode_head=dict(
        in_channels=[32, 32, 32, 32],
        channels=32,
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)))
