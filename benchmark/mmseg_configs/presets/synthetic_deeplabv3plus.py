# Embedded default: the generated street-scene dataset with the CPU-sized deeplabv3plus model
# (../models/deeplabv3plus_tiny.py); the dataset, budget and schedule: ../_base_/datasets/synthetic.py.
_base_ = ['../models/deeplabv3plus_tiny.py', '../_base_/datasets/synthetic.py']
