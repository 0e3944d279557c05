"""v2 datatypes and tensor data: raw little-endian bytes or lists of numbers, checked against shapes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput

NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(kind).newbyteorder("<")
    for name, kind in {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
    }.items()
}


def numpy_dtype(datatype: str, where: str) -> np.dtype[Any]:
    """The numpy dtype of a v2 datatype name (BYTES and BF16 are not taken here)."""
    dtype = NUMPY_TYPES.get(datatype)
    if dtype is None:
        raise InvalidInput(f"{where}: datatype '{datatype}' is not supported here (use one of {sorted(NUMPY_TYPES)})")
    return dtype


def checked_shape(shape: Any, where: str) -> tuple[int, ...]:
    """A request's shape: a list of non-negative integers."""
    if not isinstance(shape, Sequence) or isinstance(shape, str | bytes):
        raise InvalidInput(f"{where}: 'shape' must be a list of integers, got {shape!r}")
    dims = tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in dims):
        raise InvalidInput(f"{where}: 'shape' must be a list of non-negative integers, got {list(dims)}")
    return dims


def from_bytes(raw: bytes, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A tensor from its raw bytes (row-major, little-endian), which must fill `shape` exactly."""
    dtype = numpy_dtype(datatype, where)
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput(
            f"{where}: shape {list(shape)} of {datatype} is {expected} bytes, but {len(raw)} bytes were sent"
        )
    return np.frombuffer(raw, dtype).reshape(shape)


def from_values(values: Any, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A tensor from a (flat or nested, row-major) list of numbers, checked exactly for its datatype.

    The values are read as Python objects first, so nothing is rounded or wrapped on the way
    (a UINT64 past int64, 300 for UINT8, 1.5 for INT32 are all caught)."""
    dtype = numpy_dtype(datatype, where)
    flat = np.asarray(values, dtype=object).reshape(-1)
    if any(isinstance(v, list | tuple) for v in flat):
        raise InvalidInput(f"{where}: the data is not a regular list of numbers (rows of unequal length?)")
    count = math.prod(shape)
    if flat.size != count:
        raise InvalidInput(f"{where}: shape {list(shape)} has {count} elements, but the data holds {flat.size}")
    items = flat.tolist()
    if dtype.kind == "b":
        if not all(isinstance(v, bool) for v in items):
            raise InvalidInput(f"{where}: BOOL data must be true/false values")
    elif dtype.kind in "iu":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise InvalidInput(f"{where}: {datatype} data must be integers")
        info = np.iinfo(dtype)
        if items and (min(items) < info.min or max(items) > info.max):
            raise InvalidInput(
                f"{where}: {datatype} values must be {info.min}..{info.max}; got {min(items)}..{max(items)}"
            )
    elif not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        raise InvalidInput(f"{where}: {datatype} data must be numbers")
    return np.array(items, dtype=dtype).reshape(shape)


def to_bytes(array: np.ndarray) -> bytes:
    """Raw row-major little-endian bytes of `array`."""
    return np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()


def to_values(array: np.ndarray) -> list[Any]:
    """The flat row-major list of `array`'s values (JSON tensor data)."""
    return list(array.reshape(-1).tolist())
