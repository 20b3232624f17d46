# DeepLabV3+ with a narrow MobileNetV2 backbone, sized for a 2-core CPU (the embedded default).
# Inherits mmseg's own DeepLabV3+ model; plain BN (no SyncBN), no pretrained weights, no auxiliary
# head. The head keeps mmseg's Dropout2d(p=0.1) + 1x1 conv_seg: the place of last-layer MC dropout.
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad every batch (train and test) to a multiple of 32; presets with crops set size= instead
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=0.5,
        strides=(1, 2, 2, 2, 1, 1, 1),    # output stride 16 (the paper-scale model uses 8)
        dilations=(1, 1, 1, 1, 1, 2, 2),
        out_indices=(1, 2, 4, 6),
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=160,        # MobileNetV2 stage 6 at widen 0.5
        c1_in_channels=16,      # MobileNetV2 stage 1 at widen 0.5
        channels=64,
        c1_channels=16,
        dilations=(1, 2, 3, 4),  # small ASPP rates for ~100 px images at output stride 16
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)),
    auxiliary_head=None)
