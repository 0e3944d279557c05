"""Helpers shared by the tests: tiny ONNX models, a model repository, a live server."""
