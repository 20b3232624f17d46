# Paper preset: Cityscapes with FPN with ResNet-50 (Didari et al., arXiv 2408.01694).
# Dataset settings and where each value comes from: ../_base_/datasets/cityscapes.py and
# ../_base_/paper_schedule.py; the model: ../models/fpn_r50.py.
_base_ = ['../models/fpn_r50.py', '../_base_/datasets/cityscapes.py']
model = dict(data_preprocessor=_base_.crop_preprocessor)
