from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
    IMAGE_FORMAT_RAW: _ClassVar[ImageFormat]

class PngFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PNG_FILTER_UNSPECIFIED: _ClassVar[PngFilter]
    PNG_FILTER_UP: _ClassVar[PngFilter]
    PNG_FILTER_SUB: _ClassVar[PngFilter]
    PNG_FILTER_NONE: _ClassVar[PngFilter]
    PNG_FILTER_PAETH: _ClassVar[PngFilter]
    PNG_FILTER_ADAPTIVE: _ClassVar[PngFilter]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
IMAGE_FORMAT_RAW: ImageFormat
PNG_FILTER_UNSPECIFIED: PngFilter
PNG_FILTER_UP: PngFilter
PNG_FILTER_SUB: PngFilter
PNG_FILTER_NONE: PngFilter
PNG_FILTER_PAETH: PngFilter
PNG_FILTER_ADAPTIVE: PngFilter

class Image(_message.Message):
    __slots__ = ("encoded", "raw")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    raw: RawImage
    def __init__(self, encoded: _Optional[bytes] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ...) -> None: ...

class RawImage(_message.Message):
    __slots__ = ("width", "height", "rgb")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RGB_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    rgb: bytes
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., rgb: _Optional[bytes] = ...) -> None: ...

class OutputOptions(_message.Message):
    __slots__ = ("format", "quality", "png_filter")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    PNG_FILTER_FIELD_NUMBER: _ClassVar[int]
    format: ImageFormat
    quality: int
    png_filter: PngFilter
    def __init__(self, format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., png_filter: _Optional[_Union[PngFilter, str]] = ...) -> None: ...

class SuperresRequest(_message.Message):
    __slots__ = ("image", "scale", "model", "output", "tile")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TILE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    scale: int
    model: str
    output: OutputOptions
    tile: int
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., scale: _Optional[int] = ..., model: _Optional[str] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ..., tile: _Optional[int] = ...) -> None: ...

class StylizeRequest(_message.Message):
    __slots__ = ("image", "model", "output")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    image: Image
    model: str
    output: OutputOptions
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., model: _Optional[str] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ...) -> None: ...

class InterpolateRequest(_message.Message):
    __slots__ = ("first", "second", "model", "times", "output")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    first: Image
    second: Image
    model: str
    times: _containers.RepeatedScalarFieldContainer[float]
    output: OutputOptions
    def __init__(self, first: _Optional[_Union[Image, _Mapping]] = ..., second: _Optional[_Union[Image, _Mapping]] = ..., model: _Optional[str] = ..., times: _Optional[_Iterable[float]] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ...) -> None: ...

class ImageResponse(_message.Message):
    __slots__ = ("image", "model", "timing_ms")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    image: Image
    model: str
    timing_ms: _containers.ScalarMap[str, float]
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., model: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class InterpolateResponse(_message.Message):
    __slots__ = ("frames", "model", "timing_ms")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[Image]
    model: str
    timing_ms: _containers.ScalarMap[str, float]
    def __init__(self, frames: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., model: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("image", "model", "min_score")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    model: str
    min_score: float
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., model: _Optional[str] = ..., min_score: _Optional[float] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2", "score", "class_id", "label")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ..., score: _Optional[float] = ..., class_id: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("image_width", "image_height", "detections", "model", "timing_ms")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    image_width: int
    image_height: int
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    model: str
    timing_ms: _containers.ScalarMap[str, float]
    def __init__(self, image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., model: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class FrameStreamRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    frame: Frame
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("task", "model", "scale", "output", "tile", "max_in_flight", "frame_timeout_s", "min_score", "iou_threshold")
    TASK_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TILE_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAME_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    task: str
    model: str
    scale: int
    output: OutputOptions
    tile: int
    max_in_flight: int
    frame_timeout_s: float
    min_score: float
    iou_threshold: float
    def __init__(self, task: _Optional[str] = ..., model: _Optional[str] = ..., scale: _Optional[int] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ..., tile: _Optional[int] = ..., max_in_flight: _Optional[int] = ..., frame_timeout_s: _Optional[float] = ..., min_score: _Optional[float] = ..., iou_threshold: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("sequence", "image")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    image: Image
    def __init__(self, sequence: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class FrameResult(_message.Message):
    __slots__ = ("sequence", "image", "model", "timing_ms", "detections", "image_width", "image_height")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    image: Image
    model: str
    timing_ms: _containers.ScalarMap[str, float]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    image_width: int
    image_height: int
    def __init__(self, sequence: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., model: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ...) -> None: ...

class VideoRequest(_message.Message):
    __slots__ = ("config", "chunk")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    config: VideoConfig
    chunk: bytes
    def __init__(self, config: _Optional[_Union[VideoConfig, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class VideoConfig(_message.Message):
    __slots__ = ("task", "model", "scale", "container", "codec", "quality", "size_bytes", "tile", "factor")
    TASK_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TILE_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    task: str
    model: str
    scale: int
    container: str
    codec: str
    quality: int
    size_bytes: int
    tile: int
    factor: int
    def __init__(self, task: _Optional[str] = ..., model: _Optional[str] = ..., scale: _Optional[int] = ..., container: _Optional[str] = ..., codec: _Optional[str] = ..., quality: _Optional[int] = ..., size_bytes: _Optional[int] = ..., tile: _Optional[int] = ..., factor: _Optional[int] = ...) -> None: ...

class VideoResponse(_message.Message):
    __slots__ = ("chunk", "summary")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    summary: VideoSummary
    def __init__(self, chunk: _Optional[bytes] = ..., summary: _Optional[_Union[VideoSummary, _Mapping]] = ...) -> None: ...

class VideoSummary(_message.Message):
    __slots__ = ("frames", "model", "output_bytes", "timing_ms")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    frames: int
    model: str
    output_bytes: int
    timing_ms: _containers.ScalarMap[str, float]
    def __init__(self, frames: _Optional[int] = ..., model: _Optional[str] = ..., output_bytes: _Optional[int] = ..., timing_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "task", "scale", "runtime", "ready", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    task: str
    scale: int
    runtime: str
    ready: bool
    description: str
    def __init__(self, name: _Optional[str] = ..., task: _Optional[str] = ..., scale: _Optional[int] = ..., runtime: _Optional[str] = ..., ready: _Optional[bool] = ..., description: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
