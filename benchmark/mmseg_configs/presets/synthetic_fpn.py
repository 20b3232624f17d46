# Embedded default: the generated street-scene dataset with the CPU-sized fpn model
# (../models/fpn_tiny.py); the dataset, budget and schedule: ../_base_/datasets/synthetic.py.
_base_ = ['../models/fpn_tiny.py', '../_base_/datasets/synthetic.py']
