"""Detection model-repository entries for the tests: third-party detectors from ../shared/data
(copied into a temporary folder, never into the project) and a tiny synthetic YOLO-style model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.support.data import shared
from tests.support.tiny_models import IR_VERSION

COCO80 = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]
# Ultra-Light-Fast-Generic-Face-Detector's priors (its `generate_priors`): four feature maps
RFB_MIN_SIZES = [[10.0, 16.0, 24.0], [32.0, 48.0], [64.0, 96.0], [128.0, 192.0, 256.0]]
RFB_STEPS = [8, 16, 32, 64]
# In version-RFB-640.onnx (sha256 8f4c6592...), tensor "460" is the concatenated raw location
# offsets [1, 17640, 4] that the graph's own decoding (Slice, Mul, Exp, ...) turns into `boxes`.
RFB_RAW_LOCATIONS = "460"

_COMMON = """[tiling]
fixed_shape = true
[batching]
max_batch_size = 1
max_queue_delay_ms = 0.0
"""


def _write(folder: Path, toml: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.toml").write_text(toml, encoding="utf-8")
    return folder


def write_rfb640(root: Path, name: str = "faces-rfb640") -> Path:
    """RFB-640 face detector: boxes decoded in the graph (normalised x1y1x2y2), softmaxed scores."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared("models/detection/version-RFB-640.onnx"), folder / "model.onnx")
    return _write(
        folder,
        f"""name = "{name}"
task = "detect"
description = "Ultra-Light RFB-640 face detector (test copy)"
[files]
onnx = "model.onnx"
[[inputs]]
name = "input"
value_range = [-0.9921875, 1.0]   # (x - 127) / 128
[[outputs]]
name = "scores"
kind = "tensor"
[[outputs]]
name = "boxes"
kind = "tensor"
[detect]
decoder = "ssd"
input_size = [640, 480]
resize = "resize"
labels = ["face"]
score_threshold = 0.7
iou_threshold = 0.3
boxes_decoded = true
{_COMMON}""",
    )


def write_rfb640_raw(root: Path, name: str = "faces-rfb640-raw") -> Path:
    """RFB-640 with its raw location offsets exposed as output `locations`: decoded by the service
    from priors in the config instead of by the graph."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(shared("models/detection/version-RFB-640.onnx")))
    model.graph.node.append(helper.make_node("Identity", [RFB_RAW_LOCATIONS], ["locations"]))
    model.graph.output.append(helper.make_tensor_value_info("locations", TensorProto.FLOAT, [1, 17640, 4]))
    onnx.save(model, str(folder / "model.onnx"))
    return _write(
        folder,
        f"""name = "{name}"
task = "detect"
[files]
onnx = "model.onnx"
[[inputs]]
name = "input"
value_range = [-0.9921875, 1.0]
[[outputs]]
name = "scores"
kind = "tensor"
[[outputs]]
name = "locations"
kind = "tensor"
[detect]
decoder = "ssd"
input_size = [640, 480]
resize = "resize"
labels = ["face"]
score_threshold = 0.7
iou_threshold = 0.3
boxes_output = "locations"
boxes_decoded = false
[detect.priors]
min_sizes = {RFB_MIN_SIZES}
steps = {RFB_STEPS}
variance = [0.1, 0.2]
{_COMMON}""",
    )


def write_yolox_nano(root: Path, name: str = "yolox-nano") -> Path:
    """YOLOX-Nano (COCO): BGR 0-255, letterbox top-left pad 114, raw grid outputs, labels file."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared("models/detection/yolox_nano.onnx"), folder / "model.onnx")
    (folder / "coco.txt").write_text("\n".join(COCO80) + "\n", encoding="utf-8")
    return _write(
        folder,
        f"""name = "{name}"
task = "detect"
description = "YOLOX-Nano COCO detector (test copy)"
[files]
onnx = "model.onnx"
[[inputs]]
name = "images"
value_range = [0.0, 255.0]
channel_order = "BGR"
[[outputs]]
name = "output"
kind = "tensor"
[detect]
decoder = "yolox"
input_size = [416, 416]
resize = "letterbox"
align = "top-left"
pad_value = 114
strides = [8, 16, 32]
labels_file = "coco.txt"
score_threshold = 0.3
iou_threshold = 0.45
{_COMMON}""",
    )


# cx, cy, w, h (input pixels) and 3 class scores of each of 5 anchors of the tiny YOLO model
TINY_YOLO_ANCHORS = np.array(
    [
        [30.0, 30.0, 20.0, 16.0, 0.90, 0.05, 0.00],  # class 0, kept
        [31.0, 30.0, 20.0, 16.0, 0.80, 0.00, 0.00],  # class 0, overlaps the first: suppressed
        [31.0, 31.0, 20.0, 16.0, 0.00, 0.70, 0.00],  # class 1 on the same spot: kept (class-wise NMS)
        [70.0, 40.0, 10.0, 30.0, 0.00, 0.00, 0.60],  # class 2, kept
        [50.0, 20.0, 8.0, 8.0, 0.10, 0.00, 0.00],  # below the default threshold 0.25
    ],
    np.float32,
)
TINY_YOLO_INPUT = (96, 64)  # width, height
TINY_YOLO_LABELS = ("circle", "square", "triangle")


def write_tiny_yolo(root: Path, name: str = "tiny-yolo") -> Path:
    """A YOLO-style model ([1, 4 + 3, 5] output, no objectness) whose output is the constant
    `TINY_YOLO_ANCHORS` whatever the image (plus 0 x the input's mean, so the input is used)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    width, height = TINY_YOLO_INPUT
    constant = numpy_helper.from_array(TINY_YOLO_ANCHORS.T[None].copy(), "anchors")  # [1, 7, 5]
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1, axes=[1, 2, 3]),  # [N,1,1,1]
        helper.make_node("Squeeze", ["mean", "squeeze_axes"], ["mean_n"]),  # [N,1,1]
        helper.make_node("Mul", ["mean_n", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "anchors"], ["output0"]),  # [N,7,5]
    ]
    inits = [
        constant,
        zero,
        numpy_helper.from_array(np.array([3], np.int64), "squeeze_axes"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 7, 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    labels = ", ".join(f'"{label}"' for label in TINY_YOLO_LABELS)
    return _write(
        folder,
        f"""name = "{name}"
task = "detect"
[files]
onnx = "model.onnx"
[[inputs]]
name = "images"
[[outputs]]
name = "output0"
kind = "tensor"
[detect]
decoder = "yolo"
input_size = [{width}, {height}]
resize = "letterbox"
align = "center"
pad_value = 114
labels = [{labels}]
[batching]
max_batch_size = 4
""",
    )
