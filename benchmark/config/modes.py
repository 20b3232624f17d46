"""The experiment's modes and their defaults, named once: every flag's choices, every check and
every branch on a mode reads them from here (the README and docs/outputs.md explain each)."""
from __future__ import annotations

# MC dropout of the head's last layer, at training and at MC inference
MASK_CHANNEL, MASK_ELEMENT = "channel", "element"  # one keep/drop per feature channel (mmseg's
MC_DROPOUT_MASKS = (MASK_CHANNEL, MASK_ELEMENT)      # Dropout2d) / per channel and pixel
# the documented default (README "What it measures", docs/mc_dropout.md): a preset without
# active_learning.mc_dropout, or with only one of its keys, runs with it
DEFAULT_MC_DROPOUT = dict(rate=0.5, mask=MASK_CHANNEL)

# who answers the clicks
ORACLE_GROUND_TRUTH, ORACLE_FILE = "ground-truth", "file"
ORACLES = (ORACLE_GROUND_TRUTH, ORACLE_FILE)

# how each cycle's model starts
RETRAIN_SCRATCH, RETRAIN_FINETUNE = "scratch", "finetune"
RETRAIN_MODES = (RETRAIN_SCRATCH, RETRAIN_FINETUNE)

# a click on a void pixel: costs budget, or is passed over (an idealised annotator)
VOID_SPEND, VOID_SKIP = "spend", "skip"
VOID_CLICK_MODES = (VOID_SPEND, VOID_SKIP)
DEFAULT_VOID_CLICKS = VOID_SPEND

MODELS = ("deeplabv3plus", "fpn")

# where `launch` submits its jobs
EXECUTORS = ("slurm", "local", "debug")
