# Paper preset: CamVid (11 classes, SegNet split) with FPN with ResNet-50 (Didari et al., arXiv 2408.01694).
# Stated by the paper: the model, and 5 clicked pixels per image per cycle.
# Not stated by the paper, so mmseg's usual values for this model are used: augmentation, SGD lr 0.01
# / momentum 0.9 / weight decay 5e-4 with poly decay, batch size 8 (mmseg's 4 GPUs x 2 images on one
# device). mmseg has no CamVid config: the SegNet images are 480x360, so that is the base scale of
# mmseg's usual 0.5-2.0 random rescaling, the crop is the full 360x480 and testing is at full size.
# Chosen here (not stated either): 4000 iterations per cycle, 10 cycles, m = 20 MC samples, 3 seeds.
_base_ = ['../models/fpn_r50.py']
crop_size = (360, 480)

model = dict(data_preprocessor=dict(size=crop_size, size_divisor=None,
                                    test_cfg=dict(size_divisor=32)))

active_learning = dict(cycles=10, pixels_per_image=5, mc_samples=20, seeds=[0, 1, 2], map_images=4)

schedule = dict(
    iters=4000,
    batch_size=8,
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    poly_power=0.9,
    amp=False)

# Sparse labels: rescaling can drop clicked pixels (nearest-neighbour label resize); the crop's
# category-ratio check is off because almost every label pixel is "ignore".
data = dict(
    train_augment=[
        dict(type='RandomResize', scale=(480, 360), ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
    ],
    test_resize=[],
    num_workers=4)
