"""Where a job's files go (nas.cluster.files): a pyarrow.fs storage location, checked before the search; the
supernet job checkpoints there and continues from there. Files sent back to the driver through Ray (DriverFiles)
are tested on a real 2-node cluster in tests/nas_tests/runtime_tests/test_ray_cluster.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from nas.cluster.files import StorageFiles, check_storage
from nas.core.errors import ConfigError
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_storage_files_are_written_whole_and_read_back(tmp_path: Path, scheme: str) -> None:
    files = pickle.loads(pickle.dumps(StorageFiles(f"{scheme}{tmp_path}/a/b")))  # as a worker gets them
    assert files.read("x.json") is None
    files.write("x.json", b"one")
    files.write("x.json", b"two")
    assert files.read("x.json") == b"two" and (tmp_path / "a" / "b" / "x.json").read_bytes() == b"two"
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["x.json"]  # no temp file left
    assert files.where("x.json").endswith("/a/b/x.json")


@pytest.mark.parametrize(("uri", "message"), [
    ("runs/ckpt", r"a relative path means a different place on each node"),
    ("nosuchfs://bucket/x", r"pyarrow cannot open it"),
    ("", r"expected a URI"),
])
def test_a_bad_storage_location_is_refused(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"execution.storage = {uri!r}: .*{message}"):
        check_storage(uri)


def test_the_supernet_job_checkpoints_under_the_storage_location_and_continues_from_it(tmp_path: Path) -> None:
    storage = tmp_path / "bucket"
    cfg = {"name": "stored", "seed": 1, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "strategy": {"name": "darts", "options": {"epochs": 2, "batch_size": 32, "task": "digits",
                                                     "task_options": {"limit": 120}}},
           "evaluator": {"name": "nb201"}, "budget": {"max_trials": 1},
           "execution": {"executor": "local", "workers": 1, "storage": f"file://{storage}"}}
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    try:
        exp.run()
        first = exp.store.meta(Experiment.JOB_META)
    finally:
        exp.close()
    job = storage / "stored" / "supernet"
    assert sorted(p.name for p in job.iterdir()) == ["checkpoint.pt", "history.json", "result.json"]
    assert not (tmp_path / "exp" / "supernet" / "checkpoint.pt").exists()  # nothing on the node's own disk
    # a second experiment of the same name and settings finds the finished checkpoint and trains nothing more
    again = Experiment.create(parse_config(cfg), tmp_path / "exp2")
    try:
        lines: list[str] = []
        again.run(progress=lambda event: lines.append(str(event)))
        assert again.store.meta(Experiment.JOB_META)["final_alphas"] == first["final_alphas"]
        assert not [line for line in lines if line.startswith("supernet epoch")]
    finally:
        again.close()
