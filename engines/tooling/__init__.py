"""Tools around the bundled models: resize, metrics, ONNX export and checks, import, evaluation."""
