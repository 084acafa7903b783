"""ONNX files of ferkit models: export from PyTorch, the per-file export cache, int8 quantization.

The lower module that :mod:`ferkit.analysis.export` (shipping weights) and :mod:`ferkit.runtime.classifier` (running them) both
use, so neither imports the other's internals. PyTorch, ``onnx`` and onnxruntime's quantization tools are
imported inside the functions that need them: importing this module costs nothing at inference time.

The shipped ``.onnx`` files keep their weights in float16 (the same values as the fp16 safetensors they were
exported from) and cast them to float32 inside the graph, so arithmetic stays fp32 while the file stays half
the size. The ferkit metadata travels in the ONNX ``metadata_props`` under ``ferkit``.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ferkit.weights import WeightsError, load_tensors, read_metadata, sha256_of

INPUT_NAME, OUTPUT_NAME = "input", "logits"


def cpu_count() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's share), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def session_options(threads: int = 1):
    """onnxruntime SessionOptions for ferkit's CPU sessions: ``threads`` intra-op threads (0: every core this
    process may use, :func:`cpu_count`), one inter-op thread, and no spin-waiting between calls. onnxruntime's
    pool threads spin by default after each run (like OpenMP's ``OMP_WAIT_POLICY=active``), which burns the cores
    the detector, the decoder or another worker need; measured on 2 cores with other work running:
    batched int8 faces/s 583 spinning vs 679 not, single-face ms 2.67 vs 0.74."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cpu_count() if threads == 0 else threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def export_onnx(model, path: str | Path, metadata: dict, *, fp16_weights: bool = True) -> Path:
    """Export a PyTorch model (eval mode, input (B, C, S, S) float as its metadata says, output logits (B, 7)) to ONNX with a dynamic
    batch axis, ``metadata`` stored as JSON under ``ferkit``. ``fp16_weights``: keep initialisers of 1,024 values
    or more as float16 plus a Cast (half the file, fp32 arithmetic). Written atomically; returns ``path``."""
    import onnx
    import torch

    path = Path(path)
    model = model.eval()
    example = torch.zeros(2, metadata.get("channels", 1), *metadata.get("input_size", (48, 48)))
    with _quiet_exporter():
        program = torch.onnx.export(model, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True,
                                    external_data=False, verbose=False)
    proto = program.model_proto
    if fp16_weights:
        _store_weights_fp16(proto)
    set_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    _save_atomic(proto, path)
    return path


@contextmanager
def _quiet_exporter():
    """PyTorch's ONNX exporter without its chatter on stderr: "torchvision is not installed. Skipping
    torchvision::nms" (ferkit's networks use no torchvision operator) and PyTorch's own FutureWarnings."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def set_metadata(proto, metadata: dict) -> None:
    """Replace every ``metadata_props`` entry of an ONNX ModelProto by one: ``ferkit`` = JSON of ``metadata``."""
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "ferkit", json.dumps(metadata, sort_keys=True)


def _save_atomic(proto, path: Path) -> None:
    import onnx

    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    onnx.save_model(proto, str(tmp))
    os.replace(tmp, path)


def _store_weights_fp16(proto) -> None:
    """Keep large float32 initialisers as float16 plus a Cast back to float32 at the top of the graph."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and np.prod(init.dims) >= 1024:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def _fp32_initialisers(proto) -> None:
    """Undo :func:`_store_weights_fp16`: each fp16 initialiser cast to float32 at the top of the graph becomes a
    float32 initialiser again, so a quantizer sees weights (not activations) and quantizes them."""
    import onnx
    from onnx import numpy_helper

    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    casts = [n for n in graph.node if n.op_type == "Cast" and n.input[0] in inits
             and inits[n.input[0]].data_type == onnx.TensorProto.FLOAT16]
    if not casts:
        return
    for node in casts:
        half = inits.pop(node.input[0])
        inits[node.output[0]] = numpy_helper.from_array(numpy_helper.to_array(half).astype(np.float32), node.output[0])
        graph.node.remove(node)
    del graph.initializer[:]
    graph.initializer.extend(inits.values())


def write_onnx(tensors: dict, meta: dict, path: Path) -> Path:
    """The ONNX file of a ferkit network from its tensors (``arch`` named in ``meta``). Networks without
    BatchNorm keep fp16 initialisers; with BatchNorm the exporter folds each BN into its conv, and rounding the
    folded weights to fp16 again would move the logits by ~1e-3 from the PyTorch model, so those graphs keep
    fp32 initialisers and agree with PyTorch to ~1e-6. Needs PyTorch."""
    import torch

    from ferkit.models import create_model, load_tensors_into

    model = load_tensors_into(create_model(meta["arch"]), tensors)
    fp16 = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    dtype = "float16 weights, float32 compute" if fp16 else "float32 (BatchNorm folded into the convs)"
    return export_onnx(model, path, {**meta, "dtype": dtype}, fp16_weights=fp16)


def onnx_for(source: str | Path) -> Path:
    """The ONNX file for a ``.safetensors`` weight file (e.g. a run's model.safetensors), exported once into the
    cache (``FERKIT_CACHE``, default ``~/.cache/ferkit``) under the file's sha256 and reused after that.
    Needs PyTorch for the first export only; raises WeightsError (with the install hint) without it."""
    source = Path(source)
    digest = sha256_of(source)
    root = Path(os.environ.get("FERKIT_CACHE", Path.home() / ".cache" / "ferkit")) / "onnx"
    path = root / f"{source.stem}-{digest[:16]}.onnx"
    if path.exists():
        return path
    meta = read_metadata(source)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise WeightsError(f"{source}: running a .safetensors file needs a one-time export to ONNX, which needs PyTorch "
                           "(pip install 'ferkit[train]'); or export it where PyTorch is installed with "
                           "`ferkit export FILE --name NAME --out DIR` and pass the .onnx file") from None
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.onnx")
    write_onnx(load_tensors(source), {**meta, "exported_from": str(source.resolve()), "source_sha256": digest}, tmp)
    os.replace(tmp, path)
    return path


def quantize_int8(fp32_onnx: str | Path, path: str | Path, calibration: np.ndarray, metadata: dict,
                  *, batch_size: int = 32) -> Path:
    """Static int8 quantization of a ferkit classifier's ONNX file (:func:`quantize_static_int8`), calibrated on
    ``calibration``: (N, 1, 48, 48) float32 network inputs, already preprocessed and normalised as the model
    expects (:meth:`ferkit.runtime.classifier.Classifier.preprocess`); a few hundred faces suffice. ``metadata`` is stored
    under ``ferkit`` (with ``precision: int8`` added). Returns ``path``."""
    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError(f"calibration inputs must be (N, 1, H, W) float32 with N > 0, got shape {calibration.shape}")
    feeds = ({INPUT_NAME: calibration[i:i + batch_size]} for i in range(0, len(calibration), batch_size))
    return quantize_static_int8(fp32_onnx, path, feeds, metadata={**metadata, "precision": "int8"})


def quantize_static_int8(fp32_onnx: str | Path, path: str | Path, feeds, *, opset: int = 13,
                         metadata: dict | None = None) -> Path:
    """Static int8 quantization of an ONNX network with onnxruntime: QDQ format, per-channel int8 weights, uint8
    activations whose ranges (min-max) are read from ``feeds`` (an iterable of input dicts, name -> array). A
    graph older than ``opset`` is converted first (per-channel QDQ needs opset 13).

    Weights use 7 bits (``reduce_range``): onnxruntime's u8s8 kernels on AVX2/AVX-512 machines without VNNI
    multiply with VPMADDUBSW, whose 16-bit sums can saturate with full 8-bit weights (onnxruntime's quantization
    guide, "when to try U8U8 / reduce_range"); 7-bit weights cannot, so the model gives the same answers on every
    x86 CPU. Weights of operators onnxruntime does not quantize (Einsum: the seed net's locally-connected layers)
    stay as they were stored, fp16 with a Cast. ``metadata``: stored under ``ferkit`` (None: the source's
    ``metadata_props`` as the quantizer keeps them). Returns ``path``. Needs ``onnx`` (the ``train`` extra)."""
    import tempfile

    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = iter(feeds)

    class Feeds(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, quantized = Path(tmp) / "source.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        proto = onnx.load_model(str(fp32_onnx))
        _fp32_initialisers(proto)
        if max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) < opset:
            proto = version_converter.convert_version(proto, opset)
        onnx.save_model(proto, str(source))
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load_model(str(quantized))
    _store_weights_fp16(proto)  # what onnxruntime cannot quantize (e.g. Einsum: locally-connected layers) stays fp16
    if metadata is not None:
        set_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    _save_atomic(proto, path)
    return path
