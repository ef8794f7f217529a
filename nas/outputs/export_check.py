"""Fresh-process check of exported models: load each file, run the inputs through it, save the outputs.

Run by :mod:`nas.outputs.export`, never imported by it. Two modes:

* ``python -I path/to/export_check.py REQUEST.json`` -- *framework-free*: before anything else it blocks the
  imports ``nas``, ``search_spaces`` and ``strategies`` (a meta-path finder that refuses them, even through an
  editable install), then loads TorchScript, ONNX and the standalone ``model.py`` with torch / onnxruntime only.
  This file therefore imports nothing from the framework.
* ``python -m nas.outputs.export_check REQUEST.json --framework`` -- loads ``architecture.json`` + ``weights.pt`` with
  ``nas.load_model``.

``REQUEST.json``: ``{"inputs": "x.npy", "batch_size": 64, "jobs": [{"id", "format", "path"}, ...]}``; outputs go
to ``<id>.npy`` beside the request, and ``result.json`` reports per job ``ok``, ``error``, ``load_seconds``,
``run_seconds``, plus whether the framework could be imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BLOCKED = ("nas", "search_spaces", "strategies")


class _BlockFramework(importlib.abc.MetaPathFinder):
    """Refuses to import the framework's packages: exported models must run without them."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: exports must not need it)",
                                      name=fullname)
        return None


def block_framework() -> None:
    """Make ``import nas`` (and the other packages) fail in this process."""
    sys.meta_path.insert(0, _BlockFramework())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]


def framework_importable() -> bool:
    try:
        import nas  # noqa: F401  # lazy: the probe itself; this file must run with the framework blocked
    except ModuleNotFoundError:
        return False
    return True


def _load(job: dict[str, Any]) -> Any:
    fmt, path = job["format"], job["path"]
    if fmt == "torchscript":
        import torch

        return torch.jit.load(path, map_location="cpu").eval()
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if fmt == "python":
        spec = importlib.util.spec_from_file_location(f"exported_{job['id'].replace('-', '_')}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # never None for a .py path
        spec.loader.exec_module(module)  # type: ignore[union-attr]  # a .py spec always has a loader
        return module.load(str(Path(path).parent / "weights.pt"))
    if fmt == "json":
        # lazy: only --framework mode may load the framework; the default mode blocks it
        from nas.outputs.loading import load_model

        return load_model(Path(path))
    raise ValueError(f"unknown format {fmt!r}")


def _run(model: Any, fmt: str, x: Any, batch_size: int) -> Any:
    import numpy as np

    outs = []
    for i in range(0, len(x), batch_size):
        batch = np.ascontiguousarray(x[i:i + batch_size])
        if fmt == "onnx":
            outs.append(np.asarray(model(batch)))
        else:
            import torch

            with torch.no_grad():
                outs.append(model(torch.from_numpy(batch)).numpy())
    return np.concatenate(outs)


def main(argv: list[str]) -> int:
    sys.dont_write_bytecode = True  # importing model.py must leave no __pycache__ in the export
    framework = "--framework" in argv
    if not framework:
        block_framework()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    x = np.load(request_path.parent / request["inputs"], allow_pickle=False)
    results: dict[str, Any] = {"framework_importable": framework_importable(), "jobs": {}}
    for job in request["jobs"]:
        entry: dict[str, Any] = {"ok": False, "error": None}
        try:
            start = time.perf_counter()
            model = _load(job)
            entry["load_seconds"] = time.perf_counter() - start
            start = time.perf_counter()
            out = _run(model, job["format"], x, int(request["batch_size"]))
            entry["run_seconds"] = time.perf_counter() - start
            np.save(request_path.parent / f"{job['id']}.npy", out.astype(np.float32), allow_pickle=False)
            entry["ok"] = True
        except Exception as err:
            entry["error"] = f"{type(err).__name__}: {str(err)[:500]}"
            entry["traceback"] = traceback.format_exc()[-3000:]
        results["jobs"][job["id"]] = entry
    results["framework_modules_loaded"] = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    (request_path.parent / "result.json").write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
