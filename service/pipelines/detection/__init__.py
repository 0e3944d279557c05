"""Detection building blocks: input geometry (letterbox/resize and back), the output decoders
(YOLO, YOLOX, SSD with priors), non-maximum suppression, and drawing boxes."""
