"""Evaluation: tasks and data, training, augmentation, measurement, proxies, pruning, tabular benchmarks and
the evaluators that turn a trial into a result."""
