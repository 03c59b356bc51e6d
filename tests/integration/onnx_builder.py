"""Writes tiny ONNX models by hand (protobuf wire format), so tests can load
models with unusual shapes without any Python ONNX package."""


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, wire, payload):
    return _varint(num << 3 | wire) + payload


def _int(num, v):
    return _field(num, 0, _varint(v))


def _bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return _field(num, 2, _varint(len(b)) + b)


def _value_info(name, dims):
    shape = b"".join(_bytes(1, _int(1, d)) for d in dims)
    tensor = _int(1, 1) + _bytes(2, shape)  # elem_type FLOAT
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor))


def identity_model(in_dims, out_dims=None, metadata=None):
    """images -> Identity -> output0 (out_dims only changes the declared shape
    when it equals in_dims; use reshape_model for other shapes)."""
    node = _bytes(1, "images") + _bytes(2, "output0") + _bytes(4, "Identity")
    graph = (_bytes(1, node) + _bytes(2, "g") + _bytes(11, _value_info("images", in_dims)) +
             _bytes(12, _value_info("output0", out_dims or in_dims)))
    model = _int(1, 8) + _bytes(2, "sight-test") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))
    for k, v in (metadata or {}).items():
        model += _bytes(14, _bytes(1, k) + _bytes(2, v))
    return model
