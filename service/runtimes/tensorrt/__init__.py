"""TensorRT: engines built from the model's ONNX (cached per GPU and TensorRT version), one context per slot."""
