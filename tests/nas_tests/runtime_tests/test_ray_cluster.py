"""A search never hangs on the Ray cluster it is given (nas.runtime.executors.RayExecutor):

- requests no node can hold are refused before the first trial (ConfigError, exit 2 from the CLI), naming what the
  cluster has; more workers than fit run as many as fit, with a warning;
- trials that wait for a worker Ray cannot place are reported (progress line, ``nas status``) and stop the search
  after ``execution.placement_timeout``; `nas resume` then finishes it;
- on a real 2-node cluster on this machine (``ray start --head`` plus ``ray start --address``, each in its own
  process group and temp dir) whose worker node runs a Python that cannot import this package (the same
  third-party packages, linked, without the editable install: see :func:`_bare_python`): the code reaches it
  through a Ray runtime environment, a user's ``.npz`` (deleted after the driver loaded it) through the object
  store, trials run on both nodes (the store says which), a supernet job on the worker node checkpoints to the
  driver's disk and resumes after its worker is killed, and killing the worker node mid-search leaves a search
  that finishes on its own with every trial accounted for.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml

from nas.cli import main
from nas.core.errors import ConfigError, NASError
from nas.evaluation.evaluators import NB201Evaluator
from nas.evaluation.pruning import RemotePruner
from nas.outputs.view import ExperimentView
from nas.runtime.config import parse_config
from nas.runtime.events import Event, NodeLost, TrialFinished, WaitingForWorkers, WorkersLimited
from nas.runtime.executors import PlacementTimeoutError, RayExecutor, placement_fit
from nas.runtime.experiment import Experiment
from nas.runtime.loop import run_loop
from nas.trials.trial import Result, Trial
from search_spaces import get_space
from strategies import get_strategy

for _key, _value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before Ray is imported and started

ray = pytest.importorskip("ray")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this module

QUIET: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
ROOT = Path(__file__).resolve().parents[3]


def _config(name: str, **execution: Any) -> dict[str, Any]:
    return {"name": name, "seed": 0, "space": {"name": "nb201"}, "strategy": {"name": "random", "dedup": False},
            "evaluator": {"name": "nb201"}, "budget": {"max_trials": 4},
            "execution": {"executor": "ray", "workers": 1, "cpus_per_trial": 1, **execution}}


class SlowNB201(NB201Evaluator):
    """NAS-Bench-201 lookups that take ``seconds`` each, so that trials are in flight when a node dies."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        time.sleep(self.seconds)
        return super().evaluate(trial, on_epoch)


@dataclass(frozen=True)
class Tally:
    """A toy job: ``epochs`` epochs, one record each, in ``directory`` (what a one-shot supernet search does)."""

    directory: str
    epochs: int = 2
    name: ClassVar[str] = "tally"
    label: ClassVar[str] = "toy"

    def read_history(self) -> list[dict[str, Any]]:
        path = Path(self.directory) / "history.json"
        return json.loads(path.read_text()) if path.is_file() else []


def run_tally(spec: Tally, on_epoch: Any = None) -> int:
    history = spec.read_history()
    for epoch in range(len(history), spec.epochs):
        history.append({"epoch": epoch})
        (Path(spec.directory) / "history.json").write_text(json.dumps(history))
    return len(history)


class SlowPruner:
    """Stands in for the pruner actor: never answers in time."""

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        time.sleep(60)
        return True


# -- what fits, without Ray --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("nodes", "cpus", "gpus", "fit"), [
    ([{"CPU": 2.0}], 1, 0, 2),
    ([{"CPU": 2.0}], 0.5, 0, 4),
    ([{"CPU": 2.0}], 3, 0, 0),
    ([{"CPU": 2.0}], 1, 3, 0),                               # no GPU anywhere
    ([{"CPU": 8.0, "GPU": 2.0}], 1, 0.5, 4),                 # GPUs bound it
    ([{"CPU": 1.0, "GPU": 2.0}], 1, 0.5, 1),                 # CPUs bound it
    ([{"CPU": 1.0}, {"CPU": 1.0}], 1, 0, 2),                 # summed over nodes
    ([{"CPU": 1.0}, {"CPU": 1.0}], 2, 0, 0),                 # two halves do not make one trial
    ([{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0}], 1, 1, 1),
    ([{"CPU": 0.3 * 10}], 0.3, 0, 10),                       # float rounding does not lose a worker
    ([], 1, 0, 0),
])
def test_placement_fit(nodes: list[dict[str, float]], cpus: float, gpus: float, fit: int) -> None:
    assert placement_fit(nodes, cpus, gpus) == fit


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "soon"])
def test_placement_timeout_is_validated(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"execution\.placement_timeout"):
        parse_config(_config("bad", placement_timeout=bad))


# -- infeasible requests on an embedded cluster the executor starts ----------------------------------------------
@pytest.mark.parametrize(("request_", "named"), [
    ({"gpus_per_trial": 3}, "execution.gpus_per_trial = 3"),
    ({"gpus_per_trial": 0.5}, "execution.gpus_per_trial = 0.5"),
    ({"cpus_per_trial": 4}, "execution.cpus_per_trial = 4"),
])
def test_a_request_no_node_can_hold_is_refused_naming_what_there_is(request_: dict[str, float], named: str) -> None:
    assert not ray.is_initialized()
    with pytest.raises(ConfigError) as caught:
        RayExecutor(workers=2, **request_, init_options={"num_cpus": 2, "num_gpus": 0, **QUIET})
    message = str(caught.value)
    assert named in message and "no node of the Ray cluster can hold one trial" in message
    assert "the cluster has 2 CPU, 0 GPU on 1 live node(s)" in message
    assert not ray.is_initialized()  # the executor shut down the cluster it started


def _files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and modification time (ns)."""
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_search_refuses_an_infeasible_request_before_creating_anything(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The preflight starts the embedded cluster, finds no node for a trial, shuts it down: exit 2, no directory."""
    assert not ray.is_initialized()
    path = tmp_path / "gpus.yaml"
    path.write_text(yaml.safe_dump(_config("gpus", gpus_per_trial=3)))
    assert main(["search", str(path), "--out", str(tmp_path / "exp"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "execution.gpus_per_trial = 3: no node of the Ray cluster can hold one trial" in err
    assert "the cluster has" in err and "0 GPU" in err and "Traceback" not in err
    assert not (tmp_path / "exp").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["gpus.yaml"]
    assert not ray.is_initialized()  # the Ray the preflight started is shut down again


def test_resume_reruns_the_preflight_and_refuses_touching_nothing(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An experiment created on the local executor whose config now asks for GPUs the cluster lacks: `nas resume`
    exits 2 before anything in the directory changes."""
    config = {**_config("later"), "execution": {"executor": "local", "workers": 1}, "budget": {"max_trials": 2}}
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(config))
    exp_dir = tmp_path / "exp"
    assert main(["search", str(path), "--out", str(exp_dir), "--quiet"]) == 0
    later = yaml.safe_load((exp_dir / "config.yaml").read_text())
    later["execution"] = {"executor": "ray", "workers": 1, "cpus_per_trial": 1, "gpus_per_trial": 3}
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(later, sort_keys=False))
    before = _files(exp_dir)
    capsys.readouterr()
    assert main(["resume", str(exp_dir), "--max-trials", "4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "execution.gpus_per_trial = 3" in err and "0 GPU" in err and "Traceback" not in err
    assert _files(exp_dir) == before
    assert not ray.is_initialized()


def test_an_experiment_runs_on_the_executor_its_preflight_started(tmp_path: Path) -> None:
    """Ray is started once: by the preflight of Experiment.create; the run uses that cluster, then shuts it down."""
    assert not ray.is_initialized()
    exp = Experiment.create(parse_config(_config("once", workers=1)), tmp_path / "exp")
    try:
        assert ray.is_initialized()
        session = ray.get_runtime_context().get_job_id()
        inits: list[Any] = []
        real_init = ray.init
        ray.init = lambda *a, **k: inits.append(k) or real_init(*a, **k)  # type: ignore[assignment]  # counting
        try:
            ranked = exp.run()
        finally:
            ray.init = real_init  # type: ignore[assignment]  # restored
        assert inits == [] and len(ranked) == 4
        assert not ray.is_initialized()  # the run owned the executor and shut the cluster down
        assert session
    finally:
        exp.close()


class TestOnAnEmbeddedCluster:
    """One local cluster of 2 CPUs and no GPU for the class."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def cluster(cls) -> Iterator[None]:
        ray.init(num_cpus=2, num_gpus=0, **QUIET)
        try:
            yield
        finally:
            ray.shutdown()

    def test_nas_search_exits_2_naming_the_gpus_it_lacks(self, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "gpus.yaml"
        path.write_text(yaml.safe_dump(_config("gpus", gpus_per_trial=3)))
        assert main(["search", str(path), "--out", str(tmp_path / "exp"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "execution.gpus_per_trial = 3" in err and "2 CPU, 0 GPU" in err
        assert "Traceback" not in err

    def test_a_job_that_cannot_be_placed_times_out_with_a_message(self, tmp_path: Path) -> None:
        """The job's CPUs are held by another actor: the wait is reported, then it stops after placement_timeout;
        once the CPUs are free the same job runs."""
        blocker = ray.remote(num_cpus=2)(SlowPruner).remote()  # holds both CPUs of the cluster
        events: list[Event] = []
        executor = RayExecutor(workers=1, cpus_per_trial=2, placement_timeout=3.0, poll_seconds=0.5, notice_after=1.0,
                               notify=events.append)
        try:
            ray.get(blocker.__ray_ready__.remote(), timeout=60)
            with pytest.raises(PlacementTimeoutError, match=r"the tally job could not be placed on the Ray cluster "
                                                            r"for 3s \(execution.placement_timeout\): it needs 2 CPU"):
                executor.run_job(run_tally, Tally(str(tmp_path)), poll_seconds=0.5)
            waits = [e for e in events if isinstance(e, WaitingForWorkers)]
            assert waits and "1 tally job waiting" in str(waits[0])
            ray.kill(blocker, no_restart=True)
            assert executor.run_job(run_tally, Tally(str(tmp_path)), poll_seconds=0.5) == 2
        finally:
            ray.kill(blocker, no_restart=True)
            executor.shutdown()

    def test_a_pruner_that_does_not_answer_fails_the_call_with_a_message(self) -> None:
        pruner = RemotePruner(timeout=120.0, grace_epochs=1)
        assert pruner.report(0, 1, 50.0)  # the real actor answers
        pruner._actor = ray.remote(num_cpus=0)(SlowPruner).remote()
        pruner.timeout = 1.0
        with pytest.raises(NASError, match=r"did not answer within 1s \(execution.placement_timeout\)"):
            pruner.report(1, 1, 60.0)
        ray.kill(pruner._actor, no_restart=True)

    def test_more_workers_than_fit_run_as_many_as_fit_with_a_warning(self) -> None:
        events: list[Event] = []
        executor = RayExecutor(workers=3, cpus_per_trial=1)
        try:
            assert executor.capacity == 2
            executor.set_notify(events.append)  # the notice made on construction arrives now
            space = get_space("nb201")
            records = run_loop(get_strategy("random", space=space, seed=0), NB201Evaluator(), executor, max_trials=6)
        finally:
            executor.shutdown()
        assert len(records) == 6 and all(r.result.ok for r in records)
        limited = [e for e in events if isinstance(e, WorkersLimited)]
        assert len(limited) == 1 and (limited[0].requested, limited[0].fit) == (3, 2)
        assert str(limited[0]).startswith("warning: only 2 of the 3 workers requested")

    def test_waiting_for_placement_is_reported_then_stops_the_search_which_resumes(self, tmp_path: Path) -> None:
        @ray.remote(num_cpus=2)
        class Hog:  # another user's job holding every CPU of the cluster
            def ping(self) -> bool:
                return True

        hog = Hog.remote()  # type: ignore[attr-defined]  # a Ray actor class
        ray.get(hog.ping.remote(), timeout=60)
        cfg = parse_config(_config("waits", workers=2, placement_timeout=4))
        exp = Experiment.create(cfg, tmp_path / "exp")
        events: list[Event] = []
        seen_by_status: list[str | None] = []

        def progress(event: Event) -> None:
            events.append(event)
            if isinstance(event, WaitingForWorkers):
                seen_by_status.append(ExperimentView.open(tmp_path / "exp").waiting)

        try:
            with pytest.raises(PlacementTimeoutError, match=r"no Ray worker could be placed for 4s "
                                                            r"\(execution.placement_timeout\)") as caught:
                exp.run(progress=progress)
            assert "free now: 0 CPU" in str(caught.value) and "nas resume" in str(caught.value)
        finally:
            exp.close()
            ray.kill(hog)
        waits = [e for e in events if isinstance(e, WaitingForWorkers)]
        assert waits and waits[0].waiting == 2 and waits[0].running == 0 and waits[0].stops_in is not None
        assert "waiting" in str(waits[0]) and "execution.placement_timeout" in str(waits[0])
        assert seen_by_status and seen_by_status[0] is not None and "for the Ray cluster to place" in seen_by_status[0]
        view = ExperimentView.open(tmp_path / "exp")
        assert view.waiting is None and view.done == 0  # cleared when the search stopped; nothing was lost
        # `nas resume`, with the CPUs free again (and time for workers to start on this shared machine)
        config = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
        config["execution"]["placement_timeout"] = 300
        (tmp_path / "exp" / "config.yaml").write_text(yaml.safe_dump(config))
        exp = Experiment.open(tmp_path / "exp")
        try:
            exp.run()
            assert exp.store.counts() == {"COMPLETE": 4}
        finally:
            exp.close()


# -- a real 2-node cluster whose worker node lacks this package -------------------------------------------------
def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _bare_python(root: Path) -> Path:
    """A Python with every third-party package of this one (the same files, linked) but not this package: a venv
    made from the same base interpreter whose site-packages links each entry of ours except the editable install
    (its ``__editable__*`` path hook and ``nasgraph-*.dist-info``). That is what a cluster node that was given the
    dependencies but not the package has; nothing of the source tree is on its path (the node runs from ``root``,
    with no ``PYTHONPATH`` and no user site)."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    for entry in ours.iterdir():
        if entry.name.startswith(("__editable__", "nasgraph-", "__pycache__")):
            continue
        target = theirs / entry.name
        if not target.exists():
            target.symlink_to(entry)
    return python


def _node_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
            "RAY_health_check_initial_delay_ms": "0", **extra}


def _start_node(args: list[str], temp_dir: str, log: Path, python: Path | None = None,
                cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """``ray start ... --block`` in a process group of its own (killed by that group): with this Python and the
    source tree on its path, or with ``python`` (no ``PYTHONPATH``, no user site, running in ``cwd``)."""
    ports = _free_ports(7)
    options = ["start", "--block", "--num-cpus", "1", "--num-gpus", "0",
               "--temp-dir", temp_dir, "--object-store-memory", str(100 * 1024 * 1024), "--disable-usage-stats",
               "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
               "--dashboard-agent-listen-port", str(ports[2]), "--dashboard-agent-grpc-port", str(ports[3]),
               "--runtime-env-agent-port", str(ports[4]), "--metrics-export-port", str(ports[5]),
               "--min-worker-port", "0", "--max-worker-port", "0", *args]
    if python is None:
        command = [str(Path(sys.executable).with_name("ray")), *options]
        env = _node_env({"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    else:
        command = [str(python), "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())", *options]
        env = _node_env({"PYTHONNOUSERSITE": "1"})
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=cwd)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the node ``proc`` started: its process group (``ray start``, the raylet, its agents) and every process
    descending from it (Ray's workers, which a raylet starts in process groups of their own)."""
    descendants = _descendants(proc.pid, "")
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in descendants:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def _wait_for_nodes(n: int, timeout: float) -> list[str]:
    """The ids of the live nodes once there are ``n``."""
    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Ray cluster did not reach {n} live nodes in {timeout:.0f}s: {ray.nodes()}")
        time.sleep(0.5)
    return [node["NodeID"] for node in ray.nodes() if node["Alive"]]


def _descendants(root: int, title: str) -> list[int]:
    """The processes descending from ``root`` whose command line holds ``title`` (a Ray worker running a task
    shows ``ray::<function>``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    found = []
    for pid in parents:
        ancestor = pid
        while ancestor in parents and ancestor != root and ancestor > 1:
            ancestor = parents[ancestor]
        try:
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="ignore")
            if ancestor == root and title in command:
                found.append(pid)
        except OSError:
            continue
    return found


def _npz_task(path: Path) -> None:
    """A user's data file: 3 classes of 8x8 digits, only on the driver's disk (deleted once the driver loaded it)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keep = np.isin(y, [0, 1, 2])
    np.savez(path, x=x[keep][:180].reshape(-1, 1, 8, 8).astype(np.float32), y=y[keep][:180])


@dataclass
class _TwoNodes:
    address: str
    head_id: str
    worker_id: str
    worker: subprocess.Popen[bytes]
    bare_python: Path


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TwoNodes]:
    """A head node (this Python, the package importable) and a worker node whose Python lacks the package."""
    assert not ray.is_initialized()
    root = tmp_path_factory.mktemp("cluster")
    python = _bare_python(root)
    (port,) = _free_ports(1)
    head_dir, worker_dir = tempfile.mkdtemp(prefix="rh"), tempfile.mkdtemp(prefix="rw")  # short: socket paths
    head = _start_node(["--head", "--port", str(port), "--include-dashboard", "false",
                        "--node-ip-address", "127.0.0.1"], head_dir, root / "head.log")
    worker: subprocess.Popen[bytes] | None = None
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _accepts(port):  # the head's GCS is up
            assert head.poll() is None, (root / "head.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the head node did not come up in 60s"
            time.sleep(0.5)
        ray.init(address=address, **QUIET)
        (head_id,) = _wait_for_nodes(1, timeout=60)
        worker = _start_node(["--address", address, "--node-ip-address", "127.0.0.1"], worker_dir,
                             root / "worker.log", python=python, cwd=root)
        (worker_id,) = set(_wait_for_nodes(2, timeout=90)) - {head_id}
        ray.shutdown()
        yield _TwoNodes(address, head_id, worker_id, worker, python)
    finally:
        if worker is not None:
            _kill_group(worker)
        if ray.is_initialized():
            ray.shutdown()
        _kill_group(head)
        for directory in (head_dir, worker_dir):
            shutil.rmtree(directory, ignore_errors=True)


def test_the_worker_nodes_python_cannot_import_the_package(two_nodes: _TwoNodes, tmp_path: Path) -> None:
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('nas') is None and u.find_spec('torch') " \
            "and u.find_spec('ray') else 1)"
    env = _node_env({"PYTHONNOUSERSITE": "1"})
    assert subprocess.run([str(two_nodes.bare_python), "-c", probe], env=env, cwd=tmp_path).returncode == 0
    failed = subprocess.run([str(two_nodes.bare_python), "-c", "import nas"], env=env, cwd=tmp_path,
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "No module named 'nas'" in failed.stderr


def test_a_supernet_job_on_the_worker_node_checkpoints_to_the_driver_and_resumes(
        two_nodes: _TwoNodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller connects (so the executor ships the code on each actor and task); the head's CPU is held, so
    the job runs on the worker node; its worker process is killed after 2 of 6 epochs and Ray's retry continues
    from the checkpoint, which is on the driver's disk (the experiment directory), written through Ray."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    monkeypatch.chdir(tmp_path)  # Ray puts the driver's working directory on the workers' path: not the source
    ray.init(address=two_nodes.address, **QUIET)
    hog = ray.remote(num_cpus=1)(_Hog).options(  # type: ignore[attr-defined]  # a Ray actor class
        scheduling_strategy=NodeAffinitySchedulingStrategy(two_nodes.head_id, soft=False)).remote()
    try:
        ray.get(hog.ping.remote(), timeout=60)
        cfg = parse_config({"name": "oneshot", "seed": 1, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                            "strategy": {"name": "darts", "options": {"epochs": 6, "batch_size": 32, "task": "digits",
                                                                      "task_options": {"limit": 300}}},
                            "evaluator": {"name": "nb201"}, "budget": {"max_trials": 1},
                            "execution": {"executor": "ray", "workers": 1, "address": two_nodes.address,
                                          "threads_per_trial": 1, "max_retries": 1}})
        exp = Experiment.create(cfg, tmp_path / "exp")
        history = tmp_path / "exp" / "supernet" / "history.json"
        lengths: list[int] = []
        killed: list[int] = []
        done = threading.Event()

        def watch() -> None:  # the history as the driver's disk has it, every 50 ms; the job killed after epoch 2
            while not done.is_set():
                n = len(json.loads(history.read_text())) if history.is_file() else 0
                if not lengths or lengths[-1] != n:
                    lengths.append(n)
                if n >= 2 and not killed:
                    killed.extend(_descendants(two_nodes.worker.pid, "_run_job"))
                    for pid in killed:
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            exp.run()
        finally:
            done.set()
            watcher.join(timeout=30)
        outcome = exp.store.meta(Experiment.JOB_META)
        exp.close()
    finally:
        ray.kill(hog)
        ray.shutdown()
    assert len(killed) == 1, "the supernet job was not found running on the worker node"  # it ran there
    assert lengths == sorted(lengths) and lengths[-1] == 6, lengths  # continued, never started over
    assert outcome["epochs_run"] == 6 and [h["epoch"] for h in outcome["history"]] == list(range(6))
    saved = (tmp_path / "exp" / "supernet" / "checkpoint.pt")
    assert saved.is_file() and (tmp_path / "exp" / "supernet" / "result.json").is_file()


class _Hog:
    """Another user's actor holding a node's CPU."""

    def ping(self) -> bool:
        return True


TRIALS = 16


def test_a_search_runs_on_both_nodes_with_driver_data_and_survives_losing_the_worker_node(
        two_nodes: _TwoNodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor connects to ``execution.address`` and ships the code (ship_code: auto); the task is a user's
    ``.npz`` deleted once the driver loaded it, so the workers get its data from Ray's object store only; the
    worker node is killed (its raylet and workers, by process group) mid-search and the search completes.

    The worker node starts its first trial late (it ships the code and imports torch while the head already trains),
    so under load it may finish its first trial only after the head has run most of the others: ``TRIALS`` leaves
    enough trials after that point for the kill to land mid-search."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "mine.npz"
    _npz_task(data)
    cfg = parse_config({"name": "two-nodes", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                        "strategy": {"name": "random", "dedup": False},
                        "evaluator": {"name": "train", "task": "npz", "task_options": {"path": str(data)},
                                      "train": {"epochs": 2, "batch_size": 32}, "options": {"latency_runs": 0}},
                        "budget": {"max_trials": TRIALS},
                        "execution": {"executor": "ray", "workers": 2, "address": two_nodes.address,
                                      "threads_per_trial": 1, "max_retries": 0}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    assert exp.evaluator.task.num_classes == 3  # type: ignore[attr-defined]  # loaded on the driver, then gone:
    data.unlink()
    events: list[Event] = []
    nodes_before_kill: set[str] = set()
    done_at_kill: list[int] = []

    def progress(event: Event) -> None:
        events.append(event)
        if isinstance(event, TrialFinished) and not nodes_before_kill:
            finished = [t for t in exp.store.trials() if t.worker]
            nodes = {t.worker.split("/")[1].split(":")[0] for t in finished if t.worker}
            if len(nodes) == 2 and two_nodes.worker.poll() is None:
                nodes_before_kill.update(nodes)
                done_at_kill.append(len(finished))
                _kill_group(two_nodes.worker)  # the worker node's raylet and its workers, mid-search

    try:
        exp.run(progress=progress)
        counts = exp.store.counts()
        trials = exp.store.trials()
    finally:
        exp.close()
    assert nodes_before_kill == {two_nodes.head_id[:8], two_nodes.worker_id[:8]}, [str(e) for e in events]
    assert done_at_kill and done_at_kill[0] < TRIALS - 1, (done_at_kill, [str(e) for e in events])  # mid-search
    assert counts == {"COMPLETE": TRIALS}, (counts, [str(e) for e in events])  # every trial accounted for
    assert sorted(t.id for t in trials) == list(range(TRIALS))
    lost = [e for e in events if isinstance(e, NodeLost)]
    assert len(lost) == 1 and lost[0].capacity == 1, [str(e) for e in events]
    rerun = [t for t in trials if t.attempts > 1]
    assert [t.id for t in rerun] == list(lost[0].trials)  # what ran there ran again (max_retries: 0)
    assert all(t.worker and t.worker.split("/")[1].startswith(two_nodes.head_id[:8]) for t in rerun)
