# Paper scale: DeepLabV3+ with a MobileNetV2 backbone (widen 1.0, output stride 8), as in mmseg's
# mobilenet_v2 DeepLabV3+ config, with plain BN so it also runs on one GPU or a CPU. The backbone
# starts from ImageNet weights when --pretrained points at a local MobileNetV2 checkpoint.
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad every batch (train and test) to a multiple of 32; presets with crops set size= instead
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.0,
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6),
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=320,
        c1_in_channels=24,
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)),
    auxiliary_head=dict(
        in_channels=96,
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4,
                         avg_non_ignore=True)))
