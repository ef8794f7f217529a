"""Where the files a worker writes that must survive go: never to a path of the node the worker happens to run on.

* :class:`StorageFiles` -- a storage location all nodes reach, as Ray Train's ``storage_path``: a ``pyarrow.fs``
  URI (``s3://bucket/prefix``, ``gs://...``, ``hdfs://...``) or an absolute local path that every node mounts
  (NFS). ``execution.storage`` in the config.
* :class:`DriverFiles` -- without a storage location: a directory on the driver's machine (the experiment's),
  written and read through a small Ray actor pinned to the driver's node, so a worker on any node sends its
  files back to the driver.

Both are :class:`nas.trials.protocols.JobFiles`: ``read(name)``, ``write(name, data)`` (whole or not at all),
``where(name)``; both pickle, so a job carries them to its worker.
"""

from __future__ import annotations

import functools
import posixpath
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.core.errors import ConfigError
from nas.core.io import DirectoryFiles

if TYPE_CHECKING:  # annotations only: ray and pyarrow (0.38 s) are imported where used, so the config stays light
    import pyarrow.fs as pafs
    from ray.actor import ActorClass, ActorHandle

__all__ = ["StorageFiles", "DriverFiles", "check_storage", "job_storage"]

#: seconds one read or write through the driver's actor may take before the job fails (and is retried)
CALL_TIMEOUT = 300.0


def check_storage(uri: Any, field: str = "execution.storage") -> str:
    """``uri`` checked as a storage location: a URI pyarrow knows (``s3://``, ``gs://``, ``file://``, ...) or an
    absolute local path; :class:`ConfigError` naming the field, the value and the fix otherwise."""
    if not isinstance(uri, str) or not uri:
        raise ConfigError(f"{field} = {uri!r}: expected a URI (s3://bucket/prefix) or an absolute path")
    if "://" not in uri and not Path(uri).is_absolute():
        raise ConfigError(f"{field} = {uri!r}: a relative path means a different place on each node; give an "
                          "absolute path every node mounts (NFS), or a URI such as s3://bucket/prefix")
    import pyarrow.fs as pafs

    try:
        pafs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).expanduser()))
    except Exception as err:  # pyarrow raises ArrowInvalid / ArrowNotImplementedError / OSError
        raise ConfigError(f"{field} = {uri!r}: pyarrow cannot open it ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:200]}); give an absolute path or a URI of a filesystem "
                          "pyarrow.fs supports (s3://, gs://, hdfs://, file://)") from None
    return uri


class StorageFiles:
    """Files by name under ``uri`` (a ``pyarrow.fs`` URI or an absolute path all nodes share), each written to a
    temporary name and then moved over the old one (a rename on local and network filesystems; an object store
    shows a new object whole)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/") or "/"

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.uri = state["uri"]

    @functools.cached_property
    def _fs(self) -> tuple[pafs.FileSystem, str]:
        import pyarrow.fs as pafs

        return pafs.FileSystem.from_uri(self.uri)

    def read(self, name: str) -> bytes | None:
        import pyarrow.fs as pafs

        fs, base = self._fs
        path = posixpath.join(base, name)
        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with fs.open_input_stream(path) as stream:
            return bytes(stream.read())

    def write(self, name: str, data: bytes) -> None:
        import pyarrow.fs as pafs

        fs, base = self._fs
        fs.create_dir(base, recursive=True)
        tmp = posixpath.join(base, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            with fs.open_output_stream(tmp) as stream:
                stream.write(data)
            fs.move(tmp, posixpath.join(base, name))
        except BaseException:
            if fs.get_file_info(tmp).type == pafs.FileType.File:
                fs.delete_file(tmp)
            raise

    def where(self, name: str) -> str:
        return f"{self.uri}/{name}"


def job_storage(storage: str, experiment: str, folder: str) -> StorageFiles:
    """The files of the job kept in ``folder`` (``supernet``, ``weight_sharing``) of the experiment named
    ``experiment`` under the storage location ``storage`` (``execution.storage``): ``<storage>/<experiment>/<folder>``.
    The one place that layout is written: the experiment writes there and ``nas status`` reads there."""
    return StorageFiles(f"{storage.rstrip('/')}/{experiment}/{folder}")


class DriverFiles:
    """Files by name in ``directory`` on the driver's machine, reached from any node through an actor Ray
    pinned to the driver's node (made by :meth:`start`, ended by :meth:`close`). Each call waits at most
    :data:`CALL_TIMEOUT` seconds; a dead driver takes the actor with it, and the job's call fails."""

    def __init__(self, directory: str, actor: ActorHandle[Any]) -> None:
        self.directory = directory
        self._actor = actor

    @classmethod
    def start(cls, directory: str | Path, runtime_env: dict[str, Any] | None = None) -> DriverFiles:
        """An actor on this process's node (the driver's) serving ``directory``; ``runtime_env`` is the trial
        workers' (None: the job's)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        options: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 4,
                                   "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)}
        if runtime_env:
            options["runtime_env"] = runtime_env
        actor = _server_class().options(**options).remote(str(directory))
        return cls(str(directory), actor)  # type: ignore[arg-type]  # ray types remote() loosely

    def read(self, name: str) -> bytes | None:
        import ray

        return ray.get(self._actor.read.remote(name), timeout=CALL_TIMEOUT)

    def write(self, name: str, data: bytes) -> None:
        import ray

        ray.get(self._actor.write.remote(name, data), timeout=CALL_TIMEOUT)

    def where(self, name: str) -> str:
        return f"{Path(self.directory) / name} (on the driver's machine)"

    def close(self) -> None:
        """End the actor (the files stay)."""
        import ray

        ray.kill(self._actor, no_restart=True)


@functools.lru_cache(maxsize=1)
def _server_class() -> ActorClass[Any]:
    """The actor class of :class:`DriverFiles`, made on first use so that importing this module imports no Ray."""
    import ray

    return ray.remote(DirectoryFiles)
