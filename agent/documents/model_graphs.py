"""The local model's graphs: folded from the shipped int8 one, quantised, fused; each built once,
checked against the original on a probe, and cached by the source's digest; and the sessions
that run them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from agent.documents.embed import (
    LOCAL_MODEL_ID,
    LOCAL_Q8_MODEL_ID,
    LOCAL_Q8F_MODEL_ID,
    Vectors,
    normalised,
)
from agent.documents.onnx_model import (
    constant_fold,
    drop_softmax_nan_guards,
    fuse_attention,
    quantise_matmuls,
)

__all__ = [
    "QUANTISED",
    "fold_int8_model",
    "new_session",
    "pooled",
    "quantise_fused_model",
    "quantise_model",
]

logger = logging.getLogger(__name__)

OUTPUT: Final = "last_hidden_state"

# Bump when fold_int8_model or quantise_model changes what it writes, so old caches are
# remade. A change to the quantised graph's vectors needs a new model id as well.
_FOLD_VERSION: Final = 1
_QUANTISE_VERSION: Final = 1
_FUSED_QUANTISE_VERSION: Final = 1
# Folded and int8 graphs compute the same numbers; anything looser than this on
# the probe means the rewrite went wrong and the int8 graph is used instead.
_FOLD_MIN_COSINE: Final = 0.9999
# Quantised activations move the vectors (cosine 0.98-1 to the fp32 ones on real passages);
# a quantisation gone wrong lands far below this.
_QUANTISED_MIN_COSINE: Final = 0.97


def fold_int8_model(source: Path, cache_dir: Path) -> Path:
    """Return an fp32 copy of the int8 graph ``source``, folding it on first use.

    The int8 graph stores weights as int8 plus scales and dequantises them with
    Cast/Mul nodes. onnxruntime already folds those at every session start, so
    the fp32 weights alone save start-up time (~0.1 s) and the transient memory
    of holding both weight sets, not run time. What costs run time is the
    ``Where(IsNaN(softmax), 0, softmax)`` guard that the PyTorch SDPA export puts
    after every attention softmax: onnxruntime runs each one single-threaded over
    batch x heads x length^2 elements, about a quarter of the run time on 2
    cores. The copy drops them: softmax only yields NaN for a row whose every key
    is masked, and every input here attends at least to its [CLS] (the export's
    mask is finite besides).

    The result is written atomically to ``cache_dir`` under a name keyed by the
    source's sha256 (a new package version folds again) and is checked against
    the int8 graph on a probe before it is kept. Blocking: seconds the first
    time, a sha256 of the source (~35 ms) afterwards.
    """
    return _cached(source, cache_dir, "fp32", _FOLD_VERSION, _fold)


def quantise_model(source: Path, cache_dir: Path) -> Path:
    """Return the folded graph of ``source`` with int8 MatMuls, building it on first use.

    This is the ``all-MiniLM-L6-v2-q8`` model: :func:`fold_int8_model`'s graph through
    :func:`~agent.documents.onnx_model.quantise_matmuls`, ~1.8x as fast, with vectors at
    cosine ~0.994 to the fp32 ones. Cached like the fold (same key, its own name and
    version); blocking, ~3 s the first time.
    """
    return _cached(source, cache_dir, "q8", _QUANTISE_VERSION, _quantise)


def quantise_fused_model(source: Path, cache_dir: Path) -> Path:
    """Return the folded graph of ``source`` with fused attention and int8 MatMuls.

    This is the ``all-MiniLM-L6-v2-q8f`` model: :func:`fold_int8_model`'s graph through
    :func:`~agent.documents.onnx_model.fuse_attention` (onnxruntime's Attention and BiasGelu
    nodes in place of the export's many small ones) and then
    :func:`~agent.documents.onnx_model.quantise_matmuls`, the attention projections included:
    ~1.2x as fast as ``all-MiniLM-L6-v2-q8`` on 2 cores, with vectors as close to the fp32
    ones (cosine ~0.995). Cached like the others; blocking, ~3 s the first time.
    """
    return _cached(source, cache_dir, "q8f", _FUSED_QUANTISE_VERSION, _quantise_fused)


def _fold(source: Path, work: Path) -> Path:
    constant_folded = work / "constant-folded.onnx"
    folded = work / "folded.onnx"
    constant_fold(source, constant_folded)
    guards = drop_softmax_nan_guards(constant_folded, folded)
    logger.info("dropped %d NaN guards from %s", guards, source)
    _check_agreement(source, folded, _FOLD_MIN_COSINE)
    return folded


def _quantise(source: Path, work: Path) -> Path:
    quantised = work / "quantised.onnx"
    quantise_matmuls(_fold(source, work), quantised)
    _check_agreement(source, quantised, _QUANTISED_MIN_COSINE)
    return quantised


def _quantise_fused(source: Path, work: Path) -> Path:
    fused = work / "fused.onnx"
    quantised = work / "quantised-fused.onnx"
    attentions, gelus = fuse_attention(_fold(source, work), fused)
    logger.info("fused %d attentions and %d GELUs of %s", attentions, gelus, source)
    quantise_matmuls(fused, quantised, attention=True)
    _check_agreement(source, quantised, _QUANTISED_MIN_COSINE)
    return quantised


# The quantised models: how each is built, cached and not.
QUANTISED: Final = {
    LOCAL_Q8_MODEL_ID: (quantise_model, _quantise),
    LOCAL_Q8F_MODEL_ID: (quantise_fused_model, _quantise_fused),
}


def _cached(
    source: Path, cache_dir: Path, kind: str, version: int, build: Callable[[Path, Path], Path]
) -> Path:
    """``build(source, work_dir)``'s file, kept in ``cache_dir`` under the source's digest."""
    digest = _sha256(source)
    prefix = f"{LOCAL_MODEL_ID}-{kind}-"
    target = cache_dir / f"{prefix}{digest[:16]}-v{version}.onnx"
    if target.is_file():
        return target
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{kind}-", dir=cache_dir) as work:
        os.replace(build(source, Path(work)), target)
    for stale in cache_dir.glob(f"{prefix}*.onnx"):
        if stale != target:
            # Another process may still have it open; on failure it just stays.
            with contextlib.suppress(OSError):
                stale.unlink()
    logger.info("wrote %s from %s in %.1f s", target, source, time.perf_counter() - started)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_agreement(reference: Path, candidate: Path, minimum: float) -> None:
    # [CLS] the quick brown fox [SEP], and a shorter row padded to the same width.
    ids = np.array(
        [[101, 1996, 4248, 2829, 4419, 102], [101, 7592, 2088, 102, 0, 0]],
        dtype=np.int64,
    )
    mask = (ids != 0).astype(np.int64)
    expected = pooled(new_session(reference, threads=1), ids, mask)
    actual = pooled(new_session(candidate, threads=1), ids, mask)
    cosine = float(np.min(np.sum(expected * actual, axis=1)))
    if not cosine >= minimum:
        raise ValueError(f"{candidate.name} disagrees with the int8 graph (cosine {cosine:.6f})")


def new_session(path: Path, *, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # By default idle onnxruntime threads spin for a while after each run, holding a core that
    # the SQLite, Milvus and event-loop threads need. On 2 cores with 2 threads, spinning cost
    # a query 4.2 ms of CPU instead of 2.9 for the same latency, and sped up no batch.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pooled(
    session: ort.InferenceSession, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
) -> Vectors:
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = np.asarray(session.run([OUTPUT], feeds)[0], dtype=np.float32)
    # Mean over real tokens only, as sentence-transformers pools this model.
    weights = mask.astype(np.float32)
    summed = np.matmul(weights[:, np.newaxis, :], hidden)[:, 0, :]
    return normalised(summed / weights.sum(axis=1, keepdims=True))
