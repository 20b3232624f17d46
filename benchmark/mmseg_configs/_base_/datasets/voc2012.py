# PASCAL VOC 2012 (21 classes, 255 boundaries ignored): mmseg's usual 512x512 crops of images
# rescaled around 2048x512, testing at a 512 short edge. The pipeline's steps: ./real_images.py.
_base_ = ['./real_images.py']
crop_size = (512, 512)
scale = (2048, 512)
crop_preprocessor = dict(size=crop_size)
data = dict(train_augment=dict(resize=dict(scale=scale), crop=dict(crop_size=crop_size)),
            test_resize=dict(resize=dict(scale=scale)))
