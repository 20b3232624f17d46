# Paper preset: CamVid with DeepLabV3+ with MobileNetV2 (Didari et al., arXiv 2408.01694).
# Dataset settings and where each value comes from: ../_base_/datasets/camvid.py and
# ../_base_/paper_schedule.py; the model: ../models/deeplabv3plus_mobilenetv2.py.
_base_ = ['../models/deeplabv3plus_mobilenetv2.py', '../_base_/datasets/camvid.py']
model = dict(data_preprocessor=_base_.crop_preprocessor)
