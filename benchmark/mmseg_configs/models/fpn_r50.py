# Paper scale: FPN with a ResNet-50 (V1c) backbone, as mmseg's fpn_r50 model, with plain BN. The
# backbone starts from ImageNet weights when --pretrained points at a local ResNet-50 V1c checkpoint.
_base_ = ['mmseg::_base_/models/fpn_r50.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad every batch (train and test) to a multiple of 32; presets with crops set size= instead
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    pretrained=None,
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)))
