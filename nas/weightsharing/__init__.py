"""Weight sharing (single-path one-shot, Guo et al. 2020): train one supernet of a space with uniformly sampled
single paths, then score any member by inheriting its path's weights, recalibrating batch-norm statistics on a few
training batches and measuring validation accuracy; the winners are retrained from scratch and ranked by that.

:mod:`.spec` describes the supernet training as data (a job the runtime runs and checkpoints), :mod:`.job` runs it,
:mod:`.inherit` moves a path's weights into a member's model, :mod:`.evaluator` is the ``weight_sharing``
evaluator."""
