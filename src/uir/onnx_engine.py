"""``OnnxRestorer``: an exported ``.onnx`` model run by onnxruntime, behind the ``Restorer`` interface.

Importing this module registers a loader for ``.onnx`` files, so ``uir.load("model.onnx")`` and
``uir restore --model model.onnx`` run them. onnxruntime is imported when a file is opened (the ``onnx`` extra:
``pip install 'uir[onnx]'``); ``uir.export`` writes the files.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from uir.errors import UirError
from uir.models.layers import crop, pad_to_multiple
from uir.restorer_registry import Restorer, register_loader

INSTALL_HINT = "pip install 'uir[onnx]'"


class OnnxRestorer:
    """An exported ``.onnx`` model behind the ``Restorer`` interface, run by onnxruntime.

    Images are padded to the model's size multiple here, as the backbone does in torch, so any size works and
    the result equals torch's to float precision. Batches run image by image.

    Args:
        path: an ``.onnx`` file written by ``export_onnx`` (other single-input image models load too, named
            after the file).
        device: ``cpu``; ``cuda`` uses onnxruntime's CUDA provider where it is installed.
        threads: intra-op threads (default: ``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS``).

    Attributes:
        name, labels, tile_size, size_multiple: from the file's metadata.

    Example:
        >>> model = OnnxRestorer("nafnet.onnx")  # doctest: +SKIP
        >>> model.restore(torch.rand(1, 3, 37, 53)).shape  # doctest: +SKIP
        torch.Size([1, 3, 37, 53])
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        ort = require("onnxruntime")
        self.path = Path(path)
        self.device = torch.device(device)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its warnings are about graph details, not the user's input
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types, not exported in a stable place
            raise UirError(f"{self.path}: not an ONNX model onnxruntime can run ({first_line(err)})") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        self.name: str = meta.get("name", self.path.stem)
        self.labels: list[str] = json.loads(meta.get("labels", "[]"))
        self.size_multiple = int(meta.get("size_multiple", 1))
        self.tile_size = int(meta.get("tile_size", 1024))
        self._input = self.session.get_inputs()[0].name

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Restore ``lq`` ``(B, 3, H, W)`` float in [0, 1]; the same shape, in [0, 1], on ``lq``'s device.

        ``tasks`` is ignored: the model is all-in-one.
        """
        if not isinstance(lq, Tensor) or lq.ndim != 4 or lq.shape[1] != 3 or not lq.is_floating_point():
            shape = tuple(lq.shape) if isinstance(lq, Tensor) else type(lq).__name__
            raise UirError(f"{self.name}: expects a (B, 3, H, W) float tensor in [0, 1], got {shape}")
        height, width = lq.shape[-2:]
        # Padding here, as the backbone would, keeps the graph on the path it was traced on (its own pad is 0).
        padded = pad_to_multiple(lq.detach().to("cpu", torch.float32), self.size_multiple)
        outputs = [self.session.run(None, {self._input: image[None].numpy()})[0] for image in padded]
        restored = crop(torch.from_numpy(np.concatenate(outputs)), height, width)
        return restored.clamp(0.0, 1.0).to(lq.device, lq.dtype)

    def __repr__(self) -> str:
        return f"OnnxRestorer(name={self.name!r}, path={str(self.path)!r})"


def load_onnx_file(path: Path, device: str) -> Restorer | None:
    """The ``register_loader`` hook: an ``OnnxRestorer`` for ``.onnx`` files, ``None`` for other files."""
    return OnnxRestorer(path, device) if path.suffix == ".onnx" else None


def require(*modules: str) -> Any:
    """The last of ``modules``, imported; a one-line install hint when any is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UirError(f"ONNX export and inference need {', '.join(missing)}: {INSTALL_HINT}")
    return importlib.import_module(modules[-1])


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


register_loader(load_onnx_file)
