# ADE20K (150 classes, reduce_zero_label): mmseg's usual 512x512 crops of images rescaled around
# 2048x512, testing at a 512 short edge; 10 clicks per image per cycle as in the paper.
# The schedule and the active-learning budget come from ../paper_schedule.py.
_base_ = ['../paper_schedule.py']
crop_size = (512, 512)
scale = (2048, 512)
active_learning = dict(pixels_per_image=10)
schedule = dict(iters=8000)

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
    test_resize=[dict(type='Resize', scale=scale, keep_ratio=True)],
    num_workers=4, pin_memory=True, persistent_workers=True)  # worth it with a GPU
