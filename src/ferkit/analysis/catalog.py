"""What ``ferkit models`` lists: the registered model families (when PyTorch is installed), the shipped models,
each with what its own run recorded (architecture, preprocessing, labels, accuracy), and the face detectors."""

from __future__ import annotations


def describe_models() -> list[str]:
    """One line for the families, a heading, then one line per shipped model (sorted by name; the default is
    marked), then the face detectors (``--detector``). A shipped model whose files cannot be read gets its error as
    its line, never an exception."""
    from ferkit.runtime.detect import describe_detectors
    from ferkit.runtime.preprocess import describe
    from ferkit.weights import (DEFAULT_MODEL, WeightsError, is_ensemble, read_ensemble, read_manifest,
                                read_metadata, shipped_path)

    lines = []
    try:
        from ferkit.models import list_models

        lines.append("families (ferkit train --model): " + ", ".join(list_models()))
    except ImportError:
        lines.append("families: (install ferkit[train] to train)")
    lines.append("shipped models (ferkit classify --model):")
    for name in sorted(read_manifest()):
        default = " (default)" if name == DEFAULT_MODEL else ""
        try:
            kinds = read_manifest()[name]
            path = shipped_path(name, "safetensors" if "safetensors" in kinds else "onnx")
            if is_ensemble(path):
                spec = read_ensemble(path)
                members = " + ".join(f"{m['model']} x{m['weight']:.2f}" for m in spec["members"])
                acc = ", ".join(f"{k} {v * 100:.2f}%" for k, v in spec.get("metadata", {}).get("accuracy", {}).items())
                lines.append(f"  {name}{default}: ensemble ({spec['combine']}) of {members}; accuracy measured by "
                             f"`ferkit ensemble`: {acc or 'not recorded'}")
                continue
            meta = read_metadata(path)
        except WeightsError as exc:
            lines.append(f"  {name}: {exc}")
            continue
        what = {"train": "train (the rows it trained on)", "val": "val (its held-out slice)"}
        acc = ", ".join(f"{what.get(k, k)} {v * 100:.2f}%" for k, v in meta.get("accuracy", {}).items())
        precision = f", {meta['precision']} (quantized from {meta['quantized_from']['name']})" \
            if meta.get("precision", "fp32") != "fp32" else ""
        source = (f"accuracy measured beside {meta['quantized_from']['name']}" if precision
                  else "accuracy recorded by its run")
        lines.append(f"  {name}{default}: {meta['arch']}{precision}, preprocessing "
                     f"{describe(meta.get('preprocessing'))}, labels {meta.get('label_source', 'fer2013')}; "
                     f"{source}: {acc}")
    lines.append("face detectors (--detector):")
    lines.extend(describe_detectors())
    return lines
