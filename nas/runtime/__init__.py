"""Runtime: the search loop, executors, the trial store, checkpoints, the config and the experiment."""
