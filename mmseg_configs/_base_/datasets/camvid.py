# CamVid (11 classes, SegNet split). mmseg has no CamVid config: the SegNet images are 480x360, so
# that is the base scale of mmseg's usual 0.5-2.0 random rescaling, the crop is the full 360x480
# and testing is at full size.
# The schedule and the active-learning budget come from ../paper_schedule.py.
_base_ = ['../paper_schedule.py']
crop_size = (360, 480)
scale = (480, 360)

# What the presets put into their model (crops of crop_size in training, whole padded images in tests).
crop_preprocessor = dict(size=crop_size, size_divisor=None, test_cfg=dict(size_divisor=32))

# Sparse labels: rescaling can drop clicked pixels (nearest-neighbour label resize); the crop's
# category-ratio check is off because almost every label pixel is "ignore".
data = dict(
    train_augment=[
        dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
    ],
    test_resize=[],
    num_workers=4, pin_memory=True, persistent_workers=True)  # worth it with a GPU
