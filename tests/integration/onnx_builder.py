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


# ---- general graphs: nodes with attributes and constant initializers --------

FLOAT, INT64 = 1, 7  # TensorProto.DataType


def _tensor(name, dims, values, dtype=FLOAT):
    import struct
    fmt = {FLOAT: "<f", INT64: "<q"}[dtype]
    raw = b"".join(struct.pack(fmt, v) for v in values)
    return (b"".join(_int(1, d) for d in dims) + _int(2, dtype) + _bytes(8, name) + _bytes(9, raw))


def _attr(name, value):
    """An int, float or list-of-ints attribute (the only kinds the tests need)."""
    import struct
    if isinstance(value, bool) or isinstance(value, int):
        return _bytes(1, name) + _int(3, value) + _int(20, 2)
    if isinstance(value, float):
        return _bytes(1, name) + _field(2, 5, struct.pack("<f", value)) + _int(20, 1)
    return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, 7)


def node(op, inputs, outputs, **attrs):
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op) +
            b"".join(_bytes(5, _attr(k, v)) for k, v in attrs.items()))


def graph_model(nodes, inputs, outputs, initializers=(), metadata=None, opset=13):
    """inputs/outputs: (name, dims) of float tensors; initializers: (name, dims,
    values[, dtype]); nodes: node(...) results, in topological order."""
    graph = b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "g")
    graph += b"".join(_bytes(5, _tensor(*t)) for t in initializers)
    graph += b"".join(_bytes(11, _value_info(n, d)) for n, d in inputs)
    graph += b"".join(_bytes(12, _value_info(n, d)) for n, d in outputs)
    model = _int(1, 8) + _bytes(2, "sight-test") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, opset))
    for k, v in (metadata or {}).items():
        model += _bytes(14, _bytes(1, k) + _bytes(2, v))
    return model


def fails_on_bright_model(side=64, k=10):
    """An end-to-end YOLO model ([1, k, 6] output, never a detection) whose
    Run fails for a bright input: the Reshape target is computed from the
    input's mean, [1, k, 6] while the mean is under 0.9 and [1, k, 7] (which 6k
    values cannot fill) once it reaches 0.9. Sight's warm-up inputs (uniform
    gray 114/255, a 0..250/255 ramp) load it; a plain white image makes ORT's
    Run return an error at request time."""
    assert (6 * k) % 7
    nodes = [
        node("ReduceMean", ["images"], ["mean"], keepdims=0),
        node("Add", ["mean", "margin"], ["shifted"]),
        node("Floor", ["shifted"], ["bright"]),          # 0 below 0.9, 1 from 0.9 on
        node("Mul", ["bright", "delta"], ["grow"]),
        node("Add", ["base", "grow"], ["target_f"]),
        node("Cast", ["target_f"], ["target"], to=INT64),
        node("Reshape", ["zeros", "target"], ["output0"]),
    ]
    inits = [("margin", [], [0.1]), ("delta", [3], [0.0, 0.0, 1.0]), ("base", [3], [1.0, float(k), 6.0]),
             ("zeros", [6 * k], [0.0] * (6 * k))]
    meta = {"names": "{0: 'thing'}", "end2end": "True", "imgsz": f"[{side}, {side}]"}
    return graph_model(nodes, [("images", [1, 3, side, side])], [("output0", [1, k, 6])], inits, meta)


def constant_model(side, outputs, metadata=None):
    """A model whose outputs are fixed tensors, whatever the image: each output
    is its constant plus 0 x the input's mean (so the graph reads the input).
    side: the square input [1, 3, side, side]; outputs: (name, dims, values)."""
    nodes = [node("ReduceMean", ["images"], ["mean"], keepdims=0), node("Mul", ["mean", "zero"], ["nothing"])]
    inits = [("zero", [], [0.0])]
    for name, dims, values in outputs:
        nodes.append(node("Add", ["nothing", name + "_value"], [name]))
        inits.append((name + "_value", dims, [float(v) for v in values]))
    return graph_model(nodes, [("images", [1, 3, side, side])], [(n, d) for n, d, _ in outputs], inits,
                       metadata=metadata)
