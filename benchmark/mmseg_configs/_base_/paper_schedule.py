# Settings shared by the paper presets (Didari et al., "Bayesian Active Learning for Semantic
# Segmentation", arXiv 2408.01694). The paper states the models and the clicks per image per cycle
# (5; 10 on ADE20K: ./active_learning.py). It does not state the rest, so mmseg's usual values
# are used: SGD lr 0.01, momentum 0.9, weight decay 5e-4 with poly decay (power 0.9), batch size 8
# (mmseg's 4 GPUs x 2 images, on one device). Chosen here, not stated either: 10 cycles, m = 20 MC
# samples, 3 seeds, 4000 iterations per cycle (8000 on Cityscapes and ADE20K, in their files).
_base_ = ['./active_learning.py']
active_learning = dict(cycles=10, map_images=4,
                       # the uncertainty record (cycles.csv's pool means and BalEnt regime shares) draws
                       # 4096 unlabelled pixels per image instead of computing every one: on a
                       # 367-image pool of 360x480 it costs a fraction of the exact record, within
                       # 1% of its means (`benchmark perf --sections 6`, docs/performance.md)
                       record_pixels=4096)

schedule = dict(
    iters=4000,
    batch_size=8,
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    poly_power=0.9,
    amp=False,              # --amp turns it on (CUDA)
    channels_last=True,     # NHWC weights and activations (faster convolutions on GPUs and oneDNN)
    cudnn_benchmark=True)   # fixed crop sizes: cuDNN picks its fastest kernels once (CUDA only)
