"""Where the image/mask pairs of a split are found, one module per layout on disk: image and
mask folders (``folder``, any declared ``FolderLayout``), PASCAL VOC (``voc``) and CamVid
(``camvid``); ``lists`` reads the image lists that VOC and CamVid share the shape of.

Every finder returns ``seg.data.pairs.SamplePair``s and reports a missing folder, list, image or
mask as a ``SegmentationDataError`` that names the file.
"""
