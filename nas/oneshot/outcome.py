"""The outcome of a one-shot supernet search, typed (no torch): what :func:`nas.oneshot.job.run_supernet_search`
returns, what the one-shot strategies propose from, what the experiment stores (meta ``supernet``) and what
``nas status``, the report and :func:`nas.load_experiment` read. ``to_dict()`` / ``from_dict()`` give and take the
stored JSON data (keys and order as stored since the first one-shot release).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nas.graph.architecture import Architecture

__all__ = ["SearchOutcome", "UNIFORM_ENTROPY", "uniform_warning"]

#: the collapse threshold of outcomes stored before it was recorded (the setting's default)
_DEFAULT_THRESHOLD = 0.7

#: normalised op-weight entropy at or above which the architecture weights count as still uniform: the derived
#: cell is then read from noise (for 5 ops, 0.998 is a largest softmax weight of about 0.24 against 0.2)
UNIFORM_ENTROPY = 0.998


def uniform_warning(entropy: float | None) -> str | None:
    """The warning for a search whose architecture weights have not moved from uniform (``entropy``: the
    normalised op-weight entropy of its last epoch), else None."""
    if entropy is None or entropy < UNIFORM_ENTROPY:
        return None
    return (f"architecture weights still uniform (entropy {entropy:.3f}): the derived cell is read from noise; "
            "raise strategy.options.arch_lr or epochs")


@dataclass(frozen=True, kw_only=True)
class SearchOutcome:
    """A finished supernet search.

    ``arch`` is the derived member of the configured space; ``alphas`` the architecture parameters it was derived
    from (those of the last healthy epoch when the collapse guard stopped the search, else ``final_alphas``), by
    slot, with ``slots`` naming their columns' ops; ``history`` one record per epoch; ``stopped`` None or why the
    search ended early; ``warnings`` the collapse guard's warnings; ``cpu_seconds`` / ``wall_seconds`` its cost.
    """

    algorithm: str
    arch: Architecture
    alphas: dict[str, list[Any]]
    slots: dict[str, list[str]] = field(default_factory=dict)
    collapse_threshold: float = _DEFAULT_THRESHOLD
    final_alphas: dict[str, list[Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int = 0
    stopped: str | None = None
    warnings: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON data, as stored."""
        return {"algorithm": self.algorithm, "arch": self.arch.to_json(), "alphas": self.alphas, "slots": self.slots,
                "collapse_threshold": self.collapse_threshold, "final_alphas": self.final_alphas,
                "history": self.history, "epochs_run": self.epochs_run, "stopped": self.stopped,
                "warnings": self.warnings, "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchOutcome:
        """The outcome stored as ``data`` (by :meth:`to_dict`, or by an earlier version without ``slots`` or
        ``collapse_threshold``)."""
        return cls(algorithm=data["algorithm"], arch=Architecture.from_json(data["arch"]), alphas=data["alphas"],
                   slots=data.get("slots", {}), collapse_threshold=float(data.get("collapse_threshold",
                                                                                  _DEFAULT_THRESHOLD)),
                   final_alphas=data.get("final_alphas", data["alphas"]), history=data["history"],
                   epochs_run=data["epochs_run"], stopped=data["stopped"], warnings=data["warnings"],
                   cpu_seconds=data["cpu_seconds"], wall_seconds=data["wall_seconds"])

    @property
    def derived_hash(self) -> str:
        """The first 12 characters of the derived architecture's canonical hash, as messages show it."""
        return self.arch.canonical_hash()[:12]

    @property
    def uniform_warning(self) -> str | None:
        """The warning when the last epoch's op weights are still (nearly) uniform, else None."""
        return uniform_warning(self.history[-1].get("entropy") if self.history else None)

    def describe(self) -> str:
        """One line for the progress log: epochs, cost, derived architecture, why it stopped early, and the warning
        when the architecture weights never moved."""
        warning = self.uniform_warning
        return (f"{self.epochs_run} epochs, {self.wall_seconds:.0f}s ({self.cpu_seconds / 60:.1f} CPU-min); derived "
                f"{self.derived_hash}" + (f"; stopped: {self.stopped}" if self.stopped else "")
                + (f"; WARNING {warning}" if warning else ""))

    def summary(self) -> dict[str, Any]:
        """The search in brief for ``nas status`` (JSON data)."""
        last = self.history[-1] if self.history else {}
        return {"state": "done", "algorithm": self.algorithm, "epochs_run": self.epochs_run,
                "cpu_minutes": round(self.cpu_seconds / 60.0, 2), "stopped": self.stopped,
                "warnings": len(self.warnings), "param_free_share": last.get("param_free_share"),
                "entropy": last.get("entropy"), "derived": self.derived_hash, "uniform": self.uniform_warning}
