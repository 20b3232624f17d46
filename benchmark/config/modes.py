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

# what one query asks for: a pixel click, or a superpixel's dominant class (docs/regions.md)
UNIT_PIXEL, UNIT_SUPERPIXEL = "pixel", "superpixel"
UNITS = (UNIT_PIXEL, UNIT_SUPERPIXEL)
# pixel scores -> region scores (over the region's selectable pixels with a finite score)
AGGREGATIONS = ("mean", "max", "topk_mean")
SUPERPIXEL_ALGORITHMS = ("slic", "felzenszwalb")
# a preset without active_learning.superpixels, or with only some keys, runs with these. mean: a
# region's average uncertainty, not biased towards large regions as max is (the max of more noisy
# pixels is higher); region_pixels 64: 96 regions of a 64x96 embedded image, so 5 regions a cycle
# label ~5% of it (larger images want larger regions: docs/regions.md)
DEFAULT_SUPERPIXELS = dict(algorithm="slic", region_pixels=64, compactness=10.0, sigma=1.0,
                           felzenszwalb_scale=100.0, min_size=20, aggregation="mean", topk=8)
# cost of one answered query in cost units (active_learning.costs): a click is 1, and so is a
# region's dominant class (one click on a class name: Cai et al.'s convention)
DEFAULT_COSTS = {UNIT_PIXEL: 1.0, UNIT_SUPERPIXEL: 1.0}
