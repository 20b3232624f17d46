# CamVid (11 classes, SegNet split). mmseg has no CamVid config: the SegNet images are 480x360, so
# that is the base scale of mmseg's usual 0.5-2.0 random rescaling, the crop is the full 360x480
# and testing is at full size (no test resize). The pipeline's steps: ./real_images.py.
_base_ = ['./real_images.py']
crop_size = (360, 480)
scale = (480, 360)
crop_preprocessor = dict(size=crop_size)
data = dict(train_augment=dict(resize=dict(scale=scale), crop=dict(crop_size=crop_size)),
            test_resize=dict(_delete_=True))
