# Cityscapes (19 train ids, gtFine): mmseg's usual 512x1024 crops of images rescaled around
# 2048x1024, full-size testing. The pipeline's steps: ./real_images.py.
_base_ = ['./real_images.py']
crop_size = (512, 1024)
scale = (2048, 1024)
schedule = dict(iters=8000)
crop_preprocessor = dict(size=crop_size)
data = dict(train_augment=dict(resize=dict(scale=scale), crop=dict(crop_size=crop_size)),
            test_resize=dict(resize=dict(scale=scale)))
