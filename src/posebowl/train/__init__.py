"""Train the benchmark detector (ultralytics YOLO from its yaml) and evaluate it, offline.

Modules: ``offline`` (ultralytics/OpenVINO with no network), ``dataset`` (competition layout to
ultralytics layout, held-out designs), ``fit`` (training, fine-tuning with frozen BatchNorm,
resume, CPU throughput), ``recover`` (a trainable checkpoint from an exported ONNX), ``export``
(ONNX, OpenVINO IR, the benchmark's config.json, checked against the official engines),
``evaluate`` (mean IoU by size bucket and background), ``pipeline`` (the whole recipe behind
``posebowl train run``).

Importing this package imports neither torch nor ultralytics: ``dataset`` and ``evaluate`` work
without the ``[train]`` extra; training and export need it (SetupError says how to install it).
"""

from __future__ import annotations

import importlib.util


def train_extra_installed() -> bool:
    """True when ultralytics and torch can be imported (the ``[train]`` extra)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("ultralytics", "torch"))
    except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
        return False


__all__ = ["train_extra_installed"]
