"""The search mirrored into the tools people already watch experiments in: an Optuna study (for
``optuna-dashboard``), TensorBoard event files and MLflow runs.

Trackers are written from the driver only (the experiment hands each one every epoch of a trial while it trains,
as its worker sends it, every finished trial with its per-epoch history, every finished baseline, and every
epoch of a strategy's job), so they work the same on a Ray cluster as in-process. A tracker's failure never
stops the search (:class:`Trackers` reports it once and drops that tracker). Configured under ``tracking:``
(:mod:`nas.runtime.config`); ``nas export-optuna DIR`` mirrors a finished experiment.
"""

from nas.tracking.base import TrackedTrial, Tracker, Trackers, TrialEpoch, decision_params

__all__ = ["TrackedTrial", "Tracker", "Trackers", "TrialEpoch", "decision_params"]
