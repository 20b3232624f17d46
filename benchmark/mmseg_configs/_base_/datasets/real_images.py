# mmseg's usual pipeline for photographs, shared by the four real datasets (each dataset's file sets
# the steps' scale and crop size): random rescaling 0.5-2.0 around the dataset's base scale, a crop,
# a flip and photometric distortion in training; a resize to the base scale in tests. The steps are
# named so that a dataset (or a user's preset) overrides one step's settings and keeps the rest;
# the harness runs them in this order.
# The schedule and the active-learning budget come from ../paper_schedule.py.
_base_ = ['../paper_schedule.py']

# What the presets put into their model (crops of the dataset's crop_size in training, whole padded
# images in tests); each dataset's file adds size=crop_size.
crop_preprocessor = dict(size_divisor=None, test_cfg=dict(size_divisor=32))

# Sparse labels: rescaling can drop clicked pixels (nearest-neighbour label resize; the harness swaps
# in its click-preserving resize); the crop's category-ratio check is off because almost every label
# pixel is "ignore".
data = dict(
    train_augment=dict(
        resize=dict(type='RandomResize', ratio_range=(0.5, 2.0), keep_ratio=True),
        crop=dict(type='RandomCrop', cat_max_ratio=1.0),
        flip=dict(type='RandomFlip', prob=0.5),
        photometric=dict(type='PhotoMetricDistortion')),
    test_resize=dict(resize=dict(type='Resize', keep_ratio=True)),
    num_workers=4, pin_memory=True, persistent_workers=True)  # worth it with a GPU
