"""PyTorch on CUDA: the models run as torch modules, FP16 and channels_last, one stream per slot."""
