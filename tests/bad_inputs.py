"""The catalogue of bad inputs a new user might give, each with the exit code and the message it must get.

Plain data, run by ``tests/test_bad_inputs.py`` (which also writes the table ``docs/bad_inputs.md`` from it). A case
is one :class:`Bad`: a short title, what to create (a config as changes to one of the valid :data:`BASES`, a raw
config file, an ``.npz`` data file, a damaged copy of a finished experiment) and the command line to run, then the
exit code expected and a regular expression its message (stderr, else stdout) must match.

Placeholders in ``args`` and in config values: ``{config}`` the config file written for the case, ``{out}`` an
output path that does not exist yet (it must still not exist after a refused ``nas search``), ``{exp}`` the damaged
experiment, ``{data}`` the data file, ``{tmp}`` the case's scratch folder.

Cases that misbehave today (they start the search and fail every trial, hang, exit 0 or raise a traceback) carry the
issue group whose fix makes them pass in ``fixed_by``; the test marks them ``xfail(strict=True)``, so the mark must
be removed once the fix lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: valid configs the config cases change; all run a tiny search on the local executor
BASES: dict[str, dict[str, Any]] = {
    # NAS-Bench-201 look-ups: validation and a run take milliseconds
    "nb201": {"name": "bad", "seed": 0, "space": {"name": "nb201"},
              "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
              "evaluator": {"name": "nb201"}, "budget": {"max_trials": 2},
              "execution": {"executor": "local", "workers": 1}},
    # a real (tiny) training run on a built-in task
    "train": {"name": "bad", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
              "strategy": {"name": "random"},
              "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 100},
                            "train": {"epochs": 1}},
              "budget": {"max_trials": 1}, "execution": {"executor": "local", "workers": 1}},
    # the user's own data file ({data}, written by the case)
    "npz": {"name": "bad", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
            "strategy": {"name": "random"},
            "evaluator": {"name": "train", "task": "npz", "task_options": {"path": "{data}"},
                          "train": {"epochs": 1}},
            "budget": {"max_trials": 1}, "execution": {"executor": "local", "workers": 1}},
    # a GAN search: a tiny generator on digits, a few steps
    "gan": {"name": "bad", "seed": 0, "space": {"name": "gan", "options": {"C": 4, "latent_dim": 8}},
            "strategy": {"name": "random"},
            "evaluator": {"name": "gan", "task": "digits",
                          "options": {"steps": 2, "batch_size": 16, "disc_width": 8, "eval_samples": 50,
                                      "feature_epochs": 1, "collapse_ratio": 0.0, "grid_samples": 0}},
            "budget": {"max_trials": 1}, "execution": {"executor": "local", "workers": 1}},
}

SEARCH = ("search", "{config}", "--out", "{out}", "--quiet")
PREFLIGHT = "issue 12 group 1: preflight"
REFUSED = "issue 12 group 1: refused up front"
ODD_SIZE = "issue 12 group 1: odd image sizes"
INTEGRITY = "issue 12 group 3: store integrity"
#: misbehaves today, and no group of issue 12 names it
UNTRACKED = "not in issue 12: accepted although it has no effect"


@dataclass(frozen=True)
class Bad:
    """One bad input: what to create, what to run, what must come back."""

    title: str
    code: int
    #: a regular expression searched (``re.search``, case-insensitive) in stderr, or in stdout when stderr is empty
    message: str
    #: the valid config the changes apply to (a key of :data:`BASES`); None with ``text`` or without a config
    base: str | None = "nb201"
    #: dotted field -> new value (a mapping or list replaces the whole value)
    changes: dict[str, Any] = field(default_factory=dict)
    #: dotted fields removed
    drop: tuple[str, ...] = ()
    #: the raw text of the config file instead (base and changes ignored)
    text: str | None = None
    #: the data file {data}: arrays (name -> array spec, see :func:`arrays` in the test) written with ``np.savez``,
    #: or one of the kinds "text", "directory", "npy", "empty", "truncated", "missing"
    data: dict[str, Any] | str | None = None
    #: the experiment {exp}: a copy of a finished 2-trial nb201 experiment with these damages applied in order,
    #: each (action, file[, content]): "delete", "write" (text), "truncate" (keep that many bytes), "empty",
    #: "lock" (another process holds the experiment's writer lock while the command runs); the file "*" with
    #: "delete" leaves an empty folder
    damage: tuple[tuple[Any, ...], ...] | None = None
    #: further files written into the case's folder (file name -> text), e.g. a builder module beside the config
    files: dict[str, str] = field(default_factory=dict)
    #: the command line after ``nas``
    args: tuple[str, ...] = SEARCH
    #: the issue group whose fix makes this case pass; the test expects it to fail until then
    fixed_by: str | None = None
    #: how the input is shown in the table (generated from the fields when empty)
    shown: str = ""


def _cfg(title: str, changes: dict[str, Any] | None = None, message: str = "", *, base: str = "nb201",
         drop: tuple[str, ...] = (), fixed_by: str | None = None, code: int = 2) -> Bad:
    return Bad(title, code, message, base=base, changes=changes or {}, drop=drop, fixed_by=fixed_by)


#: the template experiment's config, moved to a Ray cluster and asking for 3 GPUs per trial
RAY_GPUS = ("name: bad\nseed: 0\nspace: {name: nb201}\n"
            "strategy: {name: evolution, options: {population: 4, sample_size: 2}}\nevaluator: {name: nb201}\n"
            "budget: {max_trials: 3}\nexecution: {executor: ray, workers: 1, gpus_per_trial: 3}\n")

# -- configs: the nb201 base, one field wrong ------------------------------------------------------------------------
CONFIGS: list[Bad] = [
    _cfg("unknown top-level key", {"stratgy": "random"}, r"stratgy: unknown key.*did you mean 'strategy'"),
    _cfg("unknown top-level key, no close match", {"colour": "blue"}, r"colour: unknown key; allowed: name"),
    _cfg("missing name", None, r"name: missing \(required\)", drop=("name",)),
    _cfg("missing space", None, r"space: missing \(required\)", drop=("space",)),
    _cfg("missing strategy", None, r"strategy: missing \(required\)", drop=("strategy",)),
    _cfg("empty name", {"name": ""}, r"name = '': give a non-empty name"),
    _cfg("name with a slash", {"name": "a/b"}, r"name = 'a/b'"),
    _cfg("name is a list", {"name": ["a"]}, r"name = \['a'\]: expected a string"),
    _cfg("name is a number", {"name": 3}, r"name = 3: expected a string"),
    _cfg("seed is text", {"seed": "x"}, r"seed = 'x': expected an integer"),
    _cfg("seed is a bool", {"seed": True}, r"seed = True: expected an integer"),
    _cfg("seed is negative", {"seed": -1}, r"seed = -1: must be >= 0"),
    _cfg("seed is a fraction", {"seed": 1.5}, r"seed = 1.5: expected an integer"),
    _cfg("seed is null", {"seed": None}, r"seed = None: expected an integer"),
    _cfg("space is a number", {"space": 3}, r"space: expected a mapping, got 3"),
    _cfg("space is a list", {"space": ["nb201"]}, r"space: expected a mapping"),
    _cfg("unknown space", {"space.name": "nb210"}, r"unknown search space 'nb210'.*did you mean 'nb201'"),
    _cfg("space name missing", {"space": {"options": {"C": 4}}}, r"space.name: missing"),
    _cfg("unknown space key", {"space.option": {"C": 4}}, r"space.option: unknown key.*did you mean 'options'"),
    _cfg("unknown space option", {"space.options": {"opss": ["none"]}}, r"no option 'opss'.*did you mean 'ops'"),
    _cfg("space option C = 0", {"space.options": {"C": 0}}, r"space.options.C = 0 \(space nb201\)"),
    _cfg("space option C negative", {"space.options": {"C": -8}}, r"space.options.C = -8"),
    _cfg("space option C is text", {"space.options": {"C": "four"}}, r"space.options.C = 'four'"),
    _cfg("space option C is a fraction", {"space.options": {"C": 2.5}}, r"space.options.C = 2.5"),
    _cfg("space option N = 0", {"space.options": {"N": 0}}, r"space.options.N = 0"),
    _cfg("space depth N = 2**63", {"space.options": {"N": 2**63}},
         r"space.options.N = 9223372036854775808 \(space nb201\): must be an integer in 1..256"),
    _cfg("space width C = 2**40", {"space.options": {"C": 2**40}},
         r"space.options.C = 1099511627776 \(space nb201\): must be an integer in 1..16384"),
    _cfg("space options not a mapping", {"space.options": ["C", 4]}, r"space.options = \['C', 4\]: expected a "
                                                                      r"mapping"),
    _cfg("unknown op in space", {"space.options": {"ops": ["none", "conv_9x9"]}}, r"conv_9x9"),
    _cfg("empty op list", {"space.options": {"ops": []}}, r"option ops is empty; choose from"),
    _cfg("ops not a list", {"space.options": {"ops": "skip_connect"}},
         r"ops = .skip_connect. \(space nb201\): give a list"),
    _cfg("unknown strategy", {"strategy.name": "evoluton"}, r"unknown strategy 'evoluton'.*did you mean 'evolution'"),
    _cfg("strategy shorthand misspelt", {"strategy": "radnom"}, r"'radnom'.*did you mean 'random'"),
    _cfg("unknown strategy option", {"strategy.options": {"populaton": 4}}, r"'populaton'.*did you mean "
                                                                             r"'population'"),
    _cfg("strategy population = 0", {"strategy.options": {"population": 0}},
         r"strategy.options.population = 0 \(strategy evolution\)"),
    _cfg("sample_size above the population", {"strategy.options": {"population": 4, "sample_size": 9}},
         r"sample_size 9"),
    _cfg("gp_bo depth_weight negative", {"strategy": {"name": "gp_bo", "options": {"depth_weight": -1}}},
         r"strategy.options.depth_weight = -1 \(strategy gp_bo\).*>= 0"),
    _cfg("gp_bo prior_top above 1", {"strategy": {"name": "gp_bo", "options": {"prior_top": 2}}},
         r"strategy.options.prior_top = 2 \(strategy gp_bo\).*fraction in \(0, 1\]"),
    _cfg("strategy options not a mapping", {"strategy.options": [4]}, r"strategy.options = \[4\]: expected a mapping"),
    _cfg("strategy dedup is text", {"strategy.dedup": "yes"}, r"strategy.dedup = 'yes': expected true or false"),
    _cfg("unknown strategy key", {"strategy.option": {}}, r"strategy.option: unknown key"),
    _cfg("unknown evaluator", {"evaluator.name": "nb210"}, r"unknown evaluator 'nb210'.*did you mean 'nb201'"),
    _cfg("unknown nb201 evaluator option", {"evaluator.options": {"datset": "cifar10"}}, r"'datset'"),
    _cfg("unknown NAS-Bench-201 dataset", {"evaluator.options": {"dataset": "cifar11"}}, r"'cifar11'"),
    _cfg("task given to the nb201 evaluator", {"evaluator.task": "digits"}, r"'nb201' evaluator takes no task"),
    _cfg("train settings given to the nb201 evaluator", {"evaluator.train": {"epochs": 2}},
         r"'nb201' evaluator takes no task or train settings"),
    _cfg("nb201 evaluator on the darts space", {"space": {"name": "darts"}},
         r"evaluator.name = 'nb201'.*space.name = 'darts'"),
    _cfg("nb201 evaluator with an op NAS-Bench-201 lacks",
         {"space.options": {"ops": ["none", "skip_connect", "sep_conv_3x3"]}}, r"NAS-Bench-201 holds results for"),
    _cfg("evaluator is text", {"evaluator": "nb201"}, r"evaluator: expected a mapping"),
    _cfg("unknown evaluator key", {"evaluator.option": {}}, r"evaluator.option: unknown key.*did you mean 'options'"),
    _cfg("max_trials = 0", {"budget.max_trials": 0}, r"budget.max_trials = 0: must be > 0"),
    _cfg("max_trials negative", {"budget.max_trials": -4}, r"budget.max_trials = -4: must be > 0"),
    _cfg("max_trials a fraction", {"budget.max_trials": 2.5}, r"budget.max_trials = 2.5: expected an integer"),
    _cfg("max_trials is text", {"budget.max_trials": "ten"}, r"budget.max_trials = 'ten'"),
    _cfg("max_seconds negative", {"budget.max_seconds": -1}, r"budget.max_seconds = -1"),
    _cfg("max_seconds = 0", {"budget.max_seconds": 0}, r"budget.max_seconds = 0"),
    _cfg("max_seconds with a unit", {"budget.max_seconds": "1h"}, r"budget.max_seconds = '1h'"),
    _cfg("misspelt budget key", {"budget.max_trial": 3}, r"budget.max_trial: unknown key.*did you mean 'max_trials'"),
    _cfg("budget is a number", {"budget": 10}, r"budget: expected a mapping"),
    _cfg("unknown executor", {"execution.executor": "rey"}, r"execution.executor = 'rey'.*did you mean 'ray'"),
    _cfg("workers = 0", {"execution.workers": 0}, r"execution.workers = 0"),
    _cfg("two workers on the local executor", {"execution.workers": 2}, r"execution.workers = 2.*local"),
    _cfg("cpus_per_trial = 0", {"execution.cpus_per_trial": 0}, r"execution.cpus_per_trial = 0"),
    _cfg("cpus_per_trial negative", {"execution.cpus_per_trial": -1}, r"execution.cpus_per_trial = -1"),
    _cfg("gpus_per_trial negative", {"execution.gpus_per_trial": -1}, r"execution.gpus_per_trial = -1"),
    _cfg("gpus_per_trial 1.5", {"execution.gpus_per_trial": 1.5}, r"execution.gpus_per_trial = 1.5"),
    _cfg("max_retries negative", {"execution.max_retries": -1}, r"execution.max_retries = -1"),
    _cfg("threads_per_trial = 0", {"execution.threads_per_trial": 0}, r"execution.threads_per_trial = 0"),
    # requests the Ray cluster (an embedded one, started by the preflight) cannot serve: refused, never a hang
    _cfg("Ray: a GPU request on a cluster without GPUs", {"execution": {"executor": "ray", "workers": 1,
                                                                     "gpus_per_trial": 3}},
         r"execution.gpus_per_trial = 3: no node of the Ray cluster can hold one trial \(.*3 GPU\); the cluster has "
         r".*0 GPU on 1 live node"),
    _cfg("Ray: one trial needs more CPUs than any node has", {"execution": {"executor": "ray", "workers": 1,
                                                                             "cpus_per_trial": 100000}},
         r"execution.cpus_per_trial = 100000: no node of the Ray cluster can hold one trial.*the cluster has"),
    _cfg("Ray: more workers than the cluster holds", {"execution": {"executor": "ray", "workers": 64,
                                                                    "cpus_per_trial": 1}},
         r"warning: only \d+ of the 64 workers requested \(execution.workers\) fit the Ray cluster", code=0),
    _cfg("unknown execution key", {"execution.worker": 1}, r"execution.worker: unknown key.*did you mean 'workers'"),
    _cfg("executor address is a number", {"execution.address": 6379}, r"execution.address = 6379"),
    _cfg("ship_code misspelt", {"execution.ship_code": "alway"},
         r"execution.ship_code = 'alway'.*did you mean 'always'"),
    _cfg("py_modules entry that is not importable", {"execution.py_modules": ["no_such_module_xyz"]},
         r"execution.py_modules\[0\] = 'no_such_module_xyz': neither a module importable here"),
    _cfg("runtime_env with a misspelt field", {"execution.runtime_env": {"pipp": ["einops"]}},
         r"execution.runtime_env.pipp: not a Ray runtime-environment field.*did you mean 'pip'"),
    _cfg("runtime_env env_vars with a number", {"execution.runtime_env": {"env_vars": {"OMP_NUM_THREADS": 1}}},
         r"execution.runtime_env.env_vars = .*quote numbers"),
    _cfg("storage as a relative path", {"execution.storage": "ckpts"},
         r"execution.storage = 'ckpts': a relative path means a different place on each node"),
    _cfg("storage with an unknown scheme", {"execution.storage": "nosuchfs://bucket/x"},
         r"execution.storage = 'nosuchfs://bucket/x': pyarrow cannot open it"),
    _cfg("objective direction 'up'", {"objectives": [{"metric": "score", "direction": "up"}]},
         r"objectives.*'up'.*'max' or 'min'"),
    _cfg("objective 'maximize:score'", {"objectives": ["maximize:score"]}, r"objectives.*'maximize'"),
    _cfg("objectives not a list", {"objectives": "max:score"}, r"objectives = 'max:score': expected a list"),
    _cfg("objective is a number", {"objectives": [3]}, r"objectives.*3"),
    _cfg("objective on a metric the evaluator never produces", {"objectives": ["max:accuracy"]},
         r"accuracy"),
    _cfg("constraint with a misspelt bound", {"constraints": {"params": {"maxx": 3}}}, r"constraints.*'params'.*maxx"),
    _cfg("constraint is a number", {"constraints": {"params": 3}}, r"constraints.*params"),
    _cfg("constraint on a metric the evaluator never produces", {"constraints": {"latency": {"max": 3}}},
         r"latency"),
    _cfg("constraint as text with '<'", {"constraints": ["pixel3_latency < 5"]},
         r"constraints\[0\] = 'pixel3_latency < 5' is not a bound; write 'METRIC <= NUMBER'"),
    _cfg("constraint as text with a word for the number", {"constraints": ["pixel3_latency <= five"]},
         r"constraints\[0\] = 'pixel3_latency <= five': 'five' is not a finite number"),
    _cfg("constraint as text holding code", {"constraints": ["__import__('os').getpid() <= 1"]},
         r"constraints\[0\] = .*is not a bound"),
    _cfg("constraint as text with crossed bounds", {"constraints": ["5 <= pixel3_latency <= 1"]},
         r"lower bound 5 is above the upper bound 1"),
    _cfg("constraint as text on a misspelt device metric", {"constraints": ["pixel3_latncy <= 5"]},
         r"no metric 'pixel3_latncy'.*did you mean 'pixel3_latency'"),
    _cfg("constraints as one string", {"constraints": "pixel3_latency <= 5"},
         r"constraints = 'pixel3_latency <= 5': expected dict or list"),
    _cfg("early stopping with the nb201 evaluator", {"early_stopping": {"grace_epochs": 1}},
         r"early_stopping: only the train and ssl evaluators train epoch by epoch, not evaluator.name = 'nb201'"),
    _cfg("searchable training field, nb201 evaluator", {"searchable": {"lr": [0.1, 0.01]}},
         r"searchable", fixed_by=UNTRACKED),
    _cfg("output is a number", {"output": 3}, r"output = 3: expected str or null"),
]

# -- configs: the train base (a real task and trainer) -------------------------------------------------------------
TRAIN: list[Bad] = [
    _cfg("train evaluator without a task", None, r"evaluator.task: missing", base="train", drop=("evaluator.task",)),
    _cfg("unknown task", {"evaluator.task": "digts"}, r"'digts'.*did you mean 'digits'", base="train"),
    _cfg("train evaluator on the gan (generator) space", {"space": {"name": "gan", "options": {"C": 4}}},
         r"evaluator.name = 'train' trains or scores classifiers, but space.name = 'gan' compiles generators",
         base="train"),
    _cfg("task is a number", {"evaluator.task": 3}, r"evaluator.task = 3", base="train"),
    _cfg("sequence task for an image space", {"evaluator.task": "italy_power"},
         r"evaluator.task = 'italy_power' holds sequence data", base="train"),
    _cfg("image task for a sequence space", {"space": {"name": "rnn"}},
         r"evaluator.task = 'digits' holds image data.*space 'rnn'", base="train"),
    _cfg("tabular task for a conv space", {"evaluator.task": "breast_cancer", "evaluator.task_options": {}},
         r"evaluator.task = 'breast_cancer' holds tabular data but space 'nb201' builds image models", base="train"),
    _cfg("regression metric on a classification task", {"evaluator.metric": "rmse"},
         r"evaluator.metric = 'rmse' is a regression metric but task 'digits' is classification", base="train"),
    _cfg("unknown metric", {"evaluator.metric": "f1_marco"}, r"'f1_marco' is unknown.*did you mean 'f1_macro'",
         base="train"),
    _cfg("weight sharing on a space without a supernet",
         {"space": {"name": "rnn"}, "evaluator.name": "weight_sharing", "evaluator.task": "italy_power"},
         r"'weight_sharing' needs a space with a supernet.*space 'rnn' has none", base="train"),
    _cfg("weight sharing on a space whose cells choose their inputs",
         {"space": {"name": "darts", "options": {"C": 2, "layers": 3}}, "evaluator.name": "weight_sharing"},
         r"members of space 'darts' hold .* edges .*choose their inputs.*use nb201 or transformer", base="train"),
    _cfg("weight sharing with 0 supernet epochs",
         {"evaluator.name": "weight_sharing", "evaluator.options": {"supernet_epochs": 0}},
         r"evaluator.options.supernet_epochs = 0: must be an integer >= 1", base="train"),
    _cfg("weight sharing: none-op sampling weight above 1",
         {"evaluator.name": "weight_sharing", "evaluator.options": {"supernet_none_weight": 2}},
         r"evaluator.options.supernet_none_weight = 2: must be a number in \[0", base="train"),
    _cfg("weight sharing option misspelt",
         {"evaluator.name": "weight_sharing", "evaluator.options": {"retrain_tops": 2}},
         r"evaluator.options.retrain_tops is not an option.*did you mean 'retrain_top'",
         base="train"),
    _cfg("metric for the nb201 evaluator", {"evaluator.metric": "accuracy"}, r"'nb201' evaluator has its own score"),
    _cfg("weight inheritance with the nb201 evaluator", {"evaluator.inherit": {"epochs": 1}},
         r"evaluator.inherit: the 'nb201' evaluator trains nothing"),
    _cfg("weight inheritance for 0 epochs", {"evaluator.inherit": {"epochs": 0}},
         r"evaluator.inherit.epochs = 0: must be an integer >= 1", base="train"),
    _cfg("misspelt weight inheritance key", {"evaluator.inherit": {"epoch": 1}},
         r"evaluator.inherit.epoch: unknown key.*did you mean 'epochs'", base="train"),
    _cfg("weight inheritance learning-rate scale above 1", {"evaluator.inherit": {"lr_scale": 3}},
         r"evaluator.inherit.lr_scale = 3: must be a number in \(0, 1\]", base="train"),
    _cfg("misspelt weight inheritance schedule", {"evaluator.inherit": {"schedule": "constnat"}},
         r"evaluator.inherit.schedule = 'constnat'.*did you mean 'constant'", base="train"),
    _cfg("weight inheritance zero_new_ops not a boolean", {"evaluator.inherit": {"zero_new_ops": "yes"}},
         r"evaluator.inherit.zero_new_ops = 'yes': must be true or false", base="train"),
    _cfg("weight inheritance morph not a boolean", {"evaluator.inherit": {"morph": "on"}},
         r"evaluator.inherit.morph = 'on': must be true or false", base="train"),
    _cfg("weight inheritance measure_start not a boolean", {"evaluator.inherit": {"measure_start": 1}},
         r"evaluator.inherit.measure_start = 1: must be true or false", base="train"),
    _cfg("misspelt evolution mutation preference",
         {"strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2,
                                                       "mutation": {"prefer": "grow"}}}},
         r"strategy evolution option mutation.prefer = 'grow': choose from any, growth"),
    _cfg("misspelt regression kind", {"evaluator.task_options": {"limit": 100, "kind": "regresion"}},
         r"kind = 'regresion'.*did you mean 'regression'", base="train"),
    _cfg("task function that cannot be imported", {"evaluator.task": "no_such_module_xyz:load",
                                                   "evaluator.task_options": {}},
         r"module 'no_such_module_xyz' cannot be imported", base="train"),
    _cfg("misspelt class weight", {"evaluator.train": {"epochs": 1, "class_weight": "balance"}},
         r"train.class_weight.*'balance'", base="train"),
    _cfg("unknown train field", {"evaluator.train": {"epoch": 1}}, r"'epoch'.*did you mean 'epochs'", base="train"),
    _cfg("negative learning rate", {"evaluator.train": {"lr": -1}}, r"train.lr = -1", base="train"),
    _cfg("misspelt optimizer", {"evaluator.train": {"optimizer": "sdg"}}, r"train.optimizer = 'sdg'.*did you mean "
                                                                         r"'sgd'", base="train"),
    _cfg("zero epochs", {"evaluator.train": {"epochs": 0}}, r"epochs = 0", base="train"),
    _cfg("misspelt precision", {"evaluator.train": {"precision": "bf61"}},
         r"train.precision = 'bf61'.*did you mean 'bf16'", base="train"),
    _cfg("fp16 training on the CPU", {"evaluator.train": {"precision": "fp16", "device": "cpu"}},
         r"train.precision = 'fp16' needs a CUDA device.*use 'bf16'", base="train"),
    _cfg("misspelt memory format", {"evaluator.train": {"memory_format": "channel_last"}},
         r"train.memory_format = 'channel_last'.*did you mean 'channels_last'", base="train"),
    _cfg("zero batch size", {"evaluator.train": {"batch_size": 0}}, r"batch_size = 0", base="train"),
    _cfg("train settings not a mapping", {"evaluator.train": 5}, r"evaluator.train = 5: expected a mapping",
         base="train"),
    _cfg("task options not a mapping", {"evaluator.task_options": [100]}, r"evaluator.task_options = \[100\]",
         base="train"),
    _cfg("misspelt task option", {"evaluator.task_options": {"limt": 100}}, r"limt.*did you mean 'limit'",
         base="train"),
    _cfg("task option limit too small", {"evaluator.task_options": {"limit": 5}}, r"limit", base="train",
         ),
    _cfg("task option limit is text", {"evaluator.task_options": {"limit": "all"}}, r"limit", base="train",
         ),
    _cfg("validation fraction above one half", {"evaluator.task_options": {"limit": 100, "val_fraction": 0.7}},
         r"val_fraction = 0.7", base="train"),
    _cfg("test fraction zero", {"evaluator.task_options": {"limit": 100, "test_fraction": 0}},
         r"test_fraction = 0", base="train"),
    _cfg("cifar10 without its files", {"evaluator.task": "cifar10", "evaluator.task_options": {"path": "{tmp}/none"}},
         r"cifar10", base="train"),
    _cfg("searchable unknown field", {"searchable": {"lrr": [0.1, 0.01]}}, r"searchable.*'lrr'.*did you mean 'lr'",
         base="train"),
    _cfg("searchable bad value", {"searchable": {"lr": [0.1, -1]}}, r"searchable.*lr = -1", base="train"),
    _cfg("searchable not a list", {"searchable": {"lr": 0.1}}, r"searchable.lr = 0.1.*list", base="train"),
    _cfg("early stopping unknown key", {"early_stopping": {"grace": 1}}, r"early_stopping", base="train"),
    _cfg("early stopping grace_epochs = 0", {"early_stopping": {"grace_epochs": 0}}, r"grace_epochs", base="train"),
    _cfg("early stopping reduction_factor = 1", {"early_stopping": {"reduction_factor": 1}}, r"reduction_factor",
         base="train"),
    _cfg("early stopping with a misspelt pruner", {"early_stopping": {"name": "hyperbnd"}},
         r"early_stopping.name = 'hyperbnd': unknown pruner \(did you mean 'hyperband'\?\)", base="train"),
    _cfg("hyperband first rung beyond the training epochs",
         {"early_stopping": {"name": "hyperband", "grace_epochs": 50}},
         r"early_stopping.grace_epochs = 50 exceeds max_epochs", base="train"),
    _cfg("bohb strategy without the hyperband pruner", {"strategy": {"name": "bohb"}},
         r"strategy bohb is the model half of BOHB.*early_stopping: \{name: hyperband\}", base="train"),
    _cfg("one-shot strategy with searchable fields", {"strategy": {"name": "darts"}, "searchable": {"lr": [0.1]}},
         r"searchable: the one-shot strategy 'darts'", base="train"),
    _cfg("unknown baseline", {"baselines": ["resnt18"]},
         r"baselines\[0\] = 'resnt18': no such reference model.*did you mean 'resnet18'", base="train"),
    _cfg("baselines not a list", {"baselines": "lenet5"}, r"baselines = 'lenet5': expected a list", base="train"),
    _cfg("baseline listed twice", {"baselines": ["lenet5", "lenet5"]}, r"baselines\[1\] = 'lenet5': listed twice",
         base="train"),
    _cfg("sequence baseline on an image task", {"baselines": ["gru"]},
         r"baselines\[0\] = 'gru' is a sequence model but evaluator.task = 'digits' holds image data", base="train"),
    _cfg("baseline with a look-up evaluator", {"baselines": ["lenet5"]}, r"need the train evaluator"),
    _cfg("budget of 0 trials without baselines", {"budget.max_trials": 0}, r"budget.max_trials = 0: must be > 0",
         base="train"),
]

# -- config files: the text itself is wrong ---------------------------------------------------------------------------
FILES: list[Bad] = [
    Bad("malformed YAML", 2, r"not valid YAML", text="name: x\nspace: {name: nb201\n"),
    Bad("YAML list instead of a mapping", 2, r"must hold a mapping of settings, got list",
        text="- name: x\n- space: nb201\n"),
    Bad("empty config file", 2, r"must hold a mapping of settings, got NoneType", text=""),
    Bad("a single scalar", 2, r"must hold a mapping of settings, got str", text="nb201\n"),
    Bad("tabs for indentation", 2, r"not valid YAML", text="name: x\nspace:\n\tname: nb201\n"),
    Bad("python object tag", 2, r"not valid YAML", text="name: !!python/object:os.system x\n"),
    Bad("binary garbage", 2, r"not valid YAML|must hold a mapping", text="\x00\x01\x02PK\x03\x04"),
    Bad("JSON with a missing comma", 2, r"not valid YAML", text='{"name": "x" "space": "nb201"}\n'),
    Bad("duplicate key", 2, r"duplicate|strategy.*twice",
        text="name: dup\nspace: nb201\nstrategy: random\nstrategy: evolution\nevaluator: {name: nb201}\n"
             "budget: {max_trials: 2}\nexecution: {executor: local, workers: 1}\n"),
    Bad("null key", 2, r"None: unknown key", text="name: x\nspace: nb201\nstrategy: random\n~: 3\n"),
    Bad("config path is a directory", 2, r"is a directory", base=None, args=("search", "{tmp}", "--out", "{out}"),
        ),
    Bad("config file does not exist", 2, r"does not exist", base=None,
        args=("search", "{tmp}/nope.yaml", "--out", "{out}")),
]

# -- command lines ----------------------------------------------------------------------------------------------------
CLI: list[Bad] = [
    Bad("no command", 2, r"required: command", base=None, args=()),
    Bad("unknown command", 2, r"invalid choice: 'serach'", base=None, args=("serach", "{config}")),
    Bad("search without a config", 2, r"required: config", base=None, args=("search",)),
    Bad("--max-trials 0", 2, r"budget.max_trials = 0", args=(*SEARCH, "--max-trials", "0")),
    Bad("--max-trials negative", 2, r"budget.max_trials = -3", args=(*SEARCH, "--max-trials", "-3")),
    Bad("--max-trials not a number", 2, r"--max-trials: invalid int value: 'ten'",
        args=(*SEARCH, "--max-trials", "ten")),
    Bad("--workers 2 on the local executor", 2, r"execution.workers = 2", args=(*SEARCH, "--workers", "2")),
    Bad("--workers 0", 2, r"execution.workers = 0", args=(*SEARCH, "--workers", "0")),
    Bad("--seed negative", 2, r"seed = -1", args=(*SEARCH, "--seed", "-1")),
    Bad("--seed not a number", 2, r"--seed: invalid int value", args=(*SEARCH, "--seed", "x")),
    Bad("unknown search flag", 2, r"unrecognized arguments: --maxtrials", args=(*SEARCH, "--maxtrials", "3")),
    Bad("--out is an existing file", 2, r"file|not a directory", args=("search", "{config}", "--out", "{tmp}/file"),
        data="file", shown="--out names an existing file"),
    Bad("--out inside a file", 2, r"file|not a directory", args=("search", "{config}", "--out", "{tmp}/file/exp"),
        data="file", shown="--out FILE/exp where FILE is a file"),
    Bad("--out is a non-empty folder", 2, r"exists and is not an experiment directory",
        args=("search", "{config}", "--out", "{tmp}"), shown="--out names a folder holding other files"),
    Bad("--out holds an experiment", 2, r"already holds an experiment.*--overwrite", damage=(),
        args=("search", "{config}", "--out", "{exp}")),
    Bad("status of a missing folder", 2, r"not an experiment directory", base=None, args=("status", "{tmp}/nope")),
    Bad("status of a file", 2, r"not an experiment directory", base=None, args=("status", "{config}")),
    Bad("status --top 0", 2, r"--top", damage=(), args=("status", "{exp}", "--top", "0")),
    Bad("status --top negative", 2, r"--top", damage=(), args=("status", "{exp}", "--top", "-2")),
    Bad("status --top not a number", 2, r"--top: .* is not a whole number", base=None, args=("status", "{tmp}", "--top",
                                                                                    "all")),
    Bad("resume a missing folder", 2, r"not an experiment directory", base=None, args=("resume", "{tmp}/nope")),
    Bad("resume a plain folder", 2, r"not an experiment directory", base=None, args=("resume", "{tmp}")),
    Bad("resume --max-trials below the trials done", 2, r"--max-trials 1 is below the 2 trials already done",
        damage=(), args=("resume", "{exp}", "--max-trials", "1")),
    Bad("resume --max-trials 0", 2, r"--max-trials 0 is below", damage=(), args=("resume", "{exp}", "--max-trials",
                                                                                 "0")),
    Bad("export a missing folder", 2, r"not an experiment directory", base=None, args=("export", "{tmp}/nope")),
    Bad("export --top 0", 2, r"top", damage=(), args=("export", "{exp}", "--top", "0")),
    Bad("export an unknown format", 2, r"'zip'", damage=(), args=("export", "{exp}", "--format", "zip")),
    Bad("export --check of a missing export", 2, r"export|manifest", base=None,
        args=("export", "{tmp}", "--check")),
    Bad("report of a missing folder", 2, r"not an experiment directory", base=None, args=("report", "{tmp}/nope")),
    Bad("explain a missing folder", 2, r"neither an experiment directory, an export folder", base=None,
        args=("explain", "{tmp}/nope")),
    Bad("explain an experiment that was not exported", 2, r"nas export DIR", damage=(), args=("explain", "{exp}")),
    Bad("explain with an unknown method", 2, r"unknown explanation method.*did you mean 'saliency'", damage=(),
        args=("explain", "{exp}", "--method", "salency")),
    Bad("explain --samples 0", 2, r"--samples 0", damage=(), args=("explain", "{exp}", "--samples", "0")),
    Bad("sample an unknown space", 2, r"unknown search space 'nb2001'.*did you mean 'nb201'", base=None,
        args=("sample", "nb2001")),
    Bad("benchmark an unknown strategy", 2, r"unknown strategy 'evolutoin'.*did you mean 'evolution'", base=None,
        args=("benchmark", "nb201", "--strategy", "evolutoin", "--queries", "2", "--seeds", "1")),
    Bad("benchmark --option without '='", 2, r"--option 'population': write key=value", base=None,
        args=("benchmark", "nb201", "--strategy", "random", "--option", "population")),
    Bad("benchmark an unknown dataset", 2, r"invalid choice: 'cifar11'", base=None,
        args=("benchmark", "nb201", "--strategy", "random", "--dataset", "cifar11")),
    Bad("benchmark unknown strategy option", 2, r"'populaton'", base=None,
        args=("benchmark", "nb201", "--strategy", "evolution", "--option", "populaton=4", "--queries", "2",
              "--seeds", "1")),
    Bad("benchmark objective on a misspelt device metric", 2,
        r"--objectives 'max:score,min:pixel3_latncy'.*no metric 'pixel3_latncy'.*did you mean 'pixel3_latency'",
        base=None, args=("benchmark", "nb201", "--strategy", "random", "--objectives", "max:score,min:pixel3_latncy",
                         "--queries", "2", "--seeds", "1")),
    Bad("benchmark objective 'minimize:pixel3_latency'", 2, r"--objectives .*'minimize' must be 'max' or 'min'",
        base=None, args=("benchmark", "nb201", "--strategy", "random", "--objectives",
                         "max:score,minimize:pixel3_latency", "--queries", "2", "--seeds", "1")),
    Bad("benchmark objectives with an empty item", 2, r"--objectives .*give comma-separated", base=None,
        args=("benchmark", "nb201", "--strategy", "random", "--objectives", "max:score,", "--queries", "2",
              "--seeds", "1")),
    Bad("benchmark three objectives", 2, r"3 objectives.*at most two", base=None,
        args=("benchmark", "nb201", "--strategy", "random", "--objectives",
              "max:score,min:pixel3_latency,min:params", "--queries", "2", "--seeds", "1")),
    Bad("benchmark a cost as the first objective", 2, r"the first objective must be max:score", base=None,
        args=("benchmark", "nb201", "--strategy", "random", "--objectives", "min:pixel3_latency,max:score",
              "--queries", "2", "--seeds", "1")),
    Bad("benchmark constraint with '<'", 2, r"--constraint = 'pixel3_latency < 5' is not a bound; write 'METRIC <=",
        base=None, args=("benchmark", "nb201", "--strategy", "random", "--constraint", "pixel3_latency < 5",
                         "--queries", "2", "--seeds", "1")),
    Bad("benchmark constraint no cell meets", 2, r"no cell of the table satisfies pixel3_latency <= 0.001",
        base=None, args=("benchmark", "nb201", "--strategy", "random", "--constraint", "pixel3_latency <= 0.001",
                         "--queries", "2", "--seeds", "1")),
    Bad("demo with a missing config", 2, r"does not exist", base=None,
        args=("demo", "--config", "{tmp}/nope.yaml", "--out", "{out}")),
    Bad("nas train: unknown reference", 2, r"reference 'lenet': no such reference model.*did you mean 'lenet5'",
        base=None, args=("train", "lenet", "--task", "digits", "--out", "{out}")),
    Bad("nas train without a task", 2, r"required: --task", base=None, args=("train", "lenet5")),
    Bad("nas train: sequence model on an image task", 2, r"'gru' is a sequence model.*'digits' holds image data",
        base=None, args=("train", "gru", "--task", "digits", "--out", "{out}")),
    Bad("nas train: a setting without a value", 2, r"--train 'lr': give KEY=VALUE", base=None,
        args=("train", "lenet5", "--task", "digits", "--train", "lr", "--out", "{out}")),
]


def _npz(title: str, data: dict[str, Any] | str | None, message: str, *, fixed_by: str | None = None,
         changes: dict[str, Any] | None = None, shown: str = "") -> Bad:
    return Bad(title, 2, message, base="npz", data=data, changes=changes or {}, fixed_by=fixed_by, shown=shown)


# array specs: ("normal", shape) standard normal floats; ("labels", n, classes) n labels cycling over the classes;
# ("const", shape, value); ("text", n) strings; ("nan", shape) / ("inf", shape) normal with one bad value
GOOD_X = ("normal", (40, 1, 8, 8))
GOOD_Y = ("labels", 40, 2)

# -- data files for the npz task --------------------------------------------------------------------------------------
NPZ: list[Bad] = [
    _npz("npz task without a path", None, r"task 'npz' needs a path",
         changes={"evaluator.task_options": {}}),
    _npz("npz file does not exist", "missing", r"does not exist"),
    _npz("a text file named .npz", "text", r"not a readable \.npz"),
    _npz("a directory named .npz", "directory", r"does not exist|directory"),
    _npz("an empty file", "empty", r"not a readable \.npz"),
    _npz("a truncated .npz", "truncated", r"not a readable \.npz"),
    _npz("a single .npy array", "npy", r"holds a single array"),
    _npz("wrong array names", {"a": GOOD_X, "b": GOOD_Y}, r"lacks array\(s\) \['x', 'y'\]"),
    _npz("labels missing (train evaluator)", {"x": GOOD_X}, r"holds unlabeled data \(its .npz has no array 'y'; "
         r"it has \['x'\]\), but this evaluator trains or scores on labels; add the labels.*ssl evaluator"),
    _npz("labels missing (proxy evaluator)", {"x": GOOD_X}, r"holds unlabeled data.*add the labels",
         changes={"evaluator": {"name": "proxy", "task": "npz", "task_options": {"path": "{data}"}}}),
    _npz("upper-case names", {"X": GOOD_X, "Y": GOOD_Y}, r"lacks array"),
    _npz("mismatched lengths", {"x": GOOD_X, "y": ("labels", 30, 2)}, r"got x \(40, 1, 8, 8\) and y \(30,\)",
         ),
    _npz("labels 2-D (one-hot)", {"x": GOOD_X, "y": ("normal", (40, 2))}, r"y of shape \(40, 2\)"),
    _npz("features 2-D (tabular) for a conv space", {"x": ("normal", (40, 64)), "y": GOOD_Y},
         r"holds tabular data \(64,\) but space 'nb201' builds image models"),
    _npz("fractional labels (regression targets)", {"x": GOOD_X, "y": ("normal", (40,))},
         r"fractional values.*set task option kind: regression"),
    _npz("regression targets with NaN", {"x": GOOD_X, "y": ("nan", (40,))}, r"NaN or infinite target",
         changes={"evaluator.task_options": {"path": "{data}", "kind": "regression"}}),
    _npz("features 5-D", {"x": ("normal", (40, 1, 2, 8, 8)), "y": GOOD_Y}, r"x \(40, 1, 2, 8, 8\)",
         ),
    _npz("text features", {"x": ("text", 40), "y": GOOD_Y}, r"x"),
    _npz("object arrays (pickled)", {"x": ("object", 40), "y": GOOD_Y}, r"not a readable \.npz|pickle",
         ),
    _npz("2-D images for a conv space", {"x": ("normal", (40, 8, 8)), "y": GOOD_Y},
         r"sequence|image|\(N, C, H, W\)"),
    _npz("sequence data for a conv space", {"x": ("normal", (40, 24, 1)), "y": GOOD_Y},
         r"sequence.*nb201|image"),
    _npz("image data for a sequence space", {"x": GOOD_X, "y": GOOD_Y}, r"image.*rnn|sequence",
         changes={"space": {"name": "rnn"}}),
    _npz("channels-last images", {"x": ("normal", (40, 8, 8, 3)), "y": GOOD_Y}, r"channels"),
    _npz("zero samples", {"x": ("normal", (0, 1, 8, 8)), "y": ("labels", 0, 2)}, r"sample|class",
         ),
    _npz("three samples", {"x": ("normal", (3, 1, 8, 8)), "y": ("labels", 3, 3)}, r"sample"),
    _npz("two samples per class", {"x": ("normal", (4, 1, 8, 8)), "y": ("labels", 4, 2)}, r"sample",
         ),
    _npz("a single class", {"x": GOOD_X, "y": ("labels", 40, 1)}, r"1 class"),
    _npz("NaN features", {"x": ("nan", (40, 1, 8, 8)), "y": GOOD_Y}, r"nan|finite"),
    _npz("inf features", {"x": ("inf", (40, 1, 8, 8)), "y": GOOD_Y}, r"inf|finite"),
    _npz("sequence baseline on image data (preflight)", {"x": GOOD_X, "y": GOOD_Y},
         r"baselines\[0\] = 'bigru' is a sequence model but the input of task 'npz' \(1, 8, 8\) is image data",
         changes={"baselines": ["bigru"]}),
]

# -- experiment folders: a finished experiment, damaged ---------------------------------------------------------------
EXPERIMENTS: list[Bad] = [
    Bad("resume an empty folder", 2, r"not an experiment directory", base=None, damage=(("delete", "*"),),
        args=("resume", "{exp}")),
    Bad("resume without config.yaml", 2, r"not an experiment directory \(no config.yaml\)", base=None,
        damage=(("delete", "config.yaml"),), args=("resume", "{exp}")),
    Bad("resume without the checkpoint", 2, r"no checkpoint", base=None, damage=(("delete", "checkpoint.json"),),
        args=("resume", "{exp}")),
    Bad("resume with a garbled checkpoint", 2, r"checkpoint checkpoint.json is corrupt", base=None,
        damage=(("write", "checkpoint.json", "{not json"),), args=("resume", "{exp}")),
    Bad("resume with an empty checkpoint", 2, r"checkpoint checkpoint.json is corrupt", base=None,
        damage=(("empty", "checkpoint.json"),), args=("resume", "{exp}")),
    Bad("resume with a truncated checkpoint", 2, r"checkpoint checkpoint.json is corrupt", base=None,
        damage=(("truncate", "checkpoint.json", 40),), args=("resume", "{exp}")),
    Bad("resume with a checkpoint holding a list", 2, r"corrupt \(holds list", base=None,
        damage=(("write", "checkpoint.json", "[1, 2]"),), args=("resume", "{exp}")),
    Bad("resume with a checkpoint of another version", 2, r"has version", base=None,
        damage=(("write", "checkpoint.json", '{"version": 99, "strategy": {}, "loop": {"done": 0}}'),),
        args=("resume", "{exp}")),
    Bad("resume with a checkpoint lacking its loop", 2, r"no 'strategy' or 'loop' entry", base=None,
        damage=(("write", "checkpoint.json", '{"version": 1, "strategy": {}}'),), args=("resume", "{exp}")),
    Bad("resume with a garbled config.yaml", 2, r"config.yaml is not valid YAML", base=None,
        damage=(("write", "config.yaml", "name: [x\n"),), args=("resume", "{exp}")),
    Bad("resume after the config asks for GPUs the cluster lacks", 2,
        r"execution.gpus_per_trial = 3: no node of the Ray cluster can hold one trial.*the cluster has .*0 GPU",
        base=None, damage=(("write", "config.yaml", RAY_GPUS),), args=("resume", "{exp}")),
    Bad("resume while another process writes to the experiment", 2,
        r"is in use by process <pid> on host <host> since <time>: one search writes to an experiment at a time",
        base=None,
        damage=(("lock", "lock.json"),), args=("resume", "{exp}")),
    Bad("resume with an invalid config.yaml", 2, r"seed = -1", base=None,
        damage=(("write", "config.yaml", "name: bad\nseed: -1\nspace: nb201\nstrategy: random\n"
                 "evaluator: {name: nb201}\nexecution: {executor: local, workers: 1}\n"),),
        args=("resume", "{exp}")),
    Bad("resume without trials.db", 2, r"trials.db", base=None, damage=(("delete", "trials.db"),),
        args=("resume", "{exp}")),
    Bad("resume with an empty trials.db", 2, r"trials.db", base=None, damage=(("empty", "trials.db"),),
        args=("resume", "{exp}")),
    Bad("resume with a garbled trials.db", 2, r"trials.db", base=None,
        damage=(("write", "trials.db", "not a database at all " * 40),), args=("resume", "{exp}"),
        ),
    Bad("resume with a truncated trials.db", 2, r"trials.db", base=None, damage=(("truncate", "trials.db", 600),),
        args=("resume", "{exp}")),
    Bad("status of an empty folder", 2, r"not an experiment directory", base=None, damage=(("delete", "*"),),
        args=("status", "{exp}")),
    Bad("status without trials.db", 2, r"not an experiment directory", base=None, damage=(("delete", "trials.db"),),
        args=("status", "{exp}")),
    Bad("status without config.yaml", 2, r"not an experiment directory", base=None,
        damage=(("delete", "config.yaml"),), args=("status", "{exp}")),
    Bad("status with a garbled trials.db", 2, r"trials.db.*not a readable trial store", base=None,
        damage=(("write", "trials.db", "not a database at all " * 40),), args=("status", "{exp}")),
    Bad("status with a truncated trials.db", 2, r"trials.db", base=None, damage=(("truncate", "trials.db", 600),),
        args=("status", "{exp}")),
    Bad("status with an empty trials.db", 2, r"trials.db", base=None, damage=(("empty", "trials.db"),),
        args=("status", "{exp}")),
    Bad("status with a garbled config.yaml", 2, r"config.yaml is not valid YAML", base=None,
        damage=(("write", "config.yaml", "name: [x\n"),), args=("status", "{exp}")),
    Bad("status with a config.yaml of unknown keys", 2, r"colour: unknown key", base=None,
        damage=(("write", "config.yaml", "name: x\ncolour: blue\nspace: nb201\nstrategy: random\n"),),
        args=("status", "{exp}")),
    Bad("export with a garbled trials.db", 2, r"trials.db", base=None,
        damage=(("write", "trials.db", "not a database at all " * 40),), args=("export", "{exp}")),
    Bad("export without config.yaml", 2, r"not an experiment directory", base=None,
        damage=(("delete", "config.yaml"),), args=("export", "{exp}")),
    Bad("report with a garbled trials.db", 2, r"trials.db", base=None,
        damage=(("write", "trials.db", "not a database at all " * 40),), args=("report", "{exp}")),
    Bad("report of an empty folder", 2, r"not an experiment directory", base=None, damage=(("delete", "*"),),
        args=("report", "{exp}")),
    Bad("search --out into a damaged experiment", 2, r"already holds an experiment", damage=(("delete",
                                                                                                "config.yaml"),),
        args=("search", "{config}", "--out", "{exp}")),
]



# -- define-by-run builders and YAML cell spaces: a module beside the config ----------------------------------------
def _builder(title: str, module: str, source: str | None, message: str, function: str = "build") -> Bad:
    """A ``python`` space whose builder ``module:function`` holds ``source`` (None: no such file)."""
    files = {f"{module}.py": source} if source is not None else {}
    shown = (f"space python, builder {module}:{function} with {module}.py: `{source.strip()}`" if source is not None
             else f"space python, builder {module}:{function}, no such module")
    return Bad(title, 2, message, base="train", changes={"space": {"name": "python", "options": {
        "builder": f"{module}:{function}"}}}, files=files, shown=shown)


_SIG = "def build(c, input_shape, num_classes):\n"
BUILDERS: list[Bad] = [
    _builder("builder not importable", "no_such_models_mod", None,
             r"module 'no_such_models_mod' cannot be imported.*PYTHONPATH\) or next to the config"),
    _builder("builder not callable", "bi_not_callable", "build = 3\n", r"is an object of type int, not a function"),
    _builder("builder misspelt", "bi_misspelt", _SIG + "    pass\n", r"no function 'biuld' \(did you mean 'build'\?\)",
             function="biuld"),
    _builder("builder with the wrong signature", "bi_signature", "def build(c):\n    pass\n",
             r"must take \(c, input_shape, num_classes\)"),
    _builder("builder that raises", "bi_raises", _SIG + "    w = c.choice('w', [3, 5])\n"
             "    raise ValueError(f'width {w} must be even')\n",
             r"raised ValueError: width 3 must be even \(at bi_raises.py:3 in build: raise ValueError"),
    _builder("decision name used twice with different options", "bi_twice", _SIG + "    c.choice('w', [8, 16])\n"
             "    c.choice('w', [32, 64])\n", r"decision 'w' is asked twice with different options"),
    _builder("builder returning no module", "bi_no_module", _SIG + "    return c.choice('w', [8, 16])\n",
             r"returned an object of type int, not a torch.nn.Module"),
    _builder("decision with empty options", "bi_empty", _SIG + "    c.choice('act', [])\n",
             r"decision 'act' has no options"),
    _builder("decision options that are not JSON values", "bi_objects", "import torch\n" + _SIG
             + "    c.choice('act', [torch.nn.ReLU, torch.nn.GELU])\n", r"not a JSON scalar.*name a layer type by a "
             "string"),
    Bad("builder whose output does not fit a regression task", 2,
        r"task 'diabetes' \(10,\) with 1 target: .*its output has shape \(8, [23]\), not \(batch, targets\) = \(8, 1\)",
        base="train", changes={"space": {"name": "python", "options": {"builder": "bi_outputs:build"}},
                               "evaluator.task": "diabetes"},
        files={"bi_outputs.py": "from torch import nn\n\n" + _SIG
               + "    return nn.Linear(input_shape[0], c.choice('out', [2, 3]))\n\n\nbuild.input_kind = 'tabular'\n"},
        shown="space python on task diabetes, builder bi_outputs:build with bi_outputs.py: `def build(c, input_shape, "
              "num_classes): return nn.Linear(input_shape[0], c.choice('out', [2, 3]))`"),
    _cfg("mlp space on image data", {"space": {"name": "mlp"}},
         r"digits.*holds image data .* space 'mlp' builds tabular models", base="train"),
    _cfg("cell space op of another family", {"space": {"name": "cell", "options": {"ops": ["skip_connect",
                                                                                          "mhsa_2"]}}},
         r"space.options.ops = .*'mhsa_2' is a sequence op; skeleton 'nb201' takes conv ops", base="train"),
    _cfg("cell space op not in the table", {"space": {"name": "cell", "options": {"skeleton": "sequence",
                                                                                 "ops": ["mhsa_3"]}}},
         r"'mhsa_3' is not one of .*did you mean", base="train"),
    _cfg("cell space unknown skeleton", {"space": {"name": "cell", "options": {"skeleton": "resnet"}}},
         r"space.options.skeleton = 'resnet' \(space cell\): choose from nb201, darts, sequence", base="train"),
]



# -- transfer learning: `nas finetune` and evaluator.init_from ------------------------------------------------------
def _finetune(title: str, source: str, message: str, *more: str, mode: str = "features", task: str = "digits",
              damage: tuple[tuple[Any, ...], ...] | None = None) -> Bad:
    return Bad(title, 2, message, base=None, damage=damage,
               args=("finetune", source, "--task", task, "--mode", mode, *more, "--out", "{out}"))


TRANSFER: list[Bad] = [
    _finetune("finetune a missing source", "{tmp}/nope", r"SOURCE '.*nope': no such file or folder; give an export "
              r"folder"),
    _finetune("finetune a folder that holds no model", "{tmp}", r"is not an export folder .*, a model folder .* or an "
              r"experiment directory"),
    _finetune("finetune with an unknown mode", "{exp}", r"--mode = 'featurs': choose one of full, features, partial "
              r"\(did you mean 'features'\?\)", mode="featurs", damage=()),
    _finetune("finetune partial without --freeze", "{exp}", r"--mode = 'partial' needs --freeze K", mode="partial",
              damage=()),
    _finetune("finetune --freeze negative", "{exp}", r"--freeze = -1: give a whole number of cells", "--freeze", "-1",
              mode="partial", damage=()),
    _finetune("finetune --freeze outside partial", "{exp}", r"--freeze = 2 applies to mode 'partial' only",
              "--freeze", "2", damage=()),
    _finetune("finetune --body-lr-scale above 1", "{exp}", r"--body-lr-scale = 2.0: give a fraction in \(0, 1\]",
              "--body-lr-scale", "2", mode="full", damage=()),
    _finetune("finetune on an unknown task", "{exp}", r"digitz.*did you mean 'digits'", task="digitz", damage=()),
    _finetune("finetune a trial that does not exist", "{exp}", r"--trial 99: experiment .* has no such trial; its "
              r"trials are 0 to 1", "--trial", "99", damage=()),
    _finetune("finetune a trial of an evaluator that trains nothing", "{exp}", r"evaluator 'nb201' trains nothing",
              "--trial", "0", damage=()),
    _finetune("finetune an experiment without --trial or an export", "{exp}", r"an experiment without an export: "
              r"give --trial N", damage=()),
    _cfg("init_from a missing file", {"evaluator.init_from": "{tmp}/nowhere.pt"},
         r"evaluator.init_from = '.*nowhere.pt': no such file or folder", base="train"),
    Bad("init_from a file that is not weights", 2, r"evaluator.init_from = '.*junk.pt': junk.pt cannot be read with "
        r"torch.load\(weights_only=True\)", base="train", changes={"evaluator.init_from": "{tmp}/junk.pt"},
        files={"junk.pt": "not a state_dict"}),
    _cfg("init_mode unknown", {"evaluator.init_from": "{tmp}/w.pt", "evaluator.init_mode": "frozen"},
         r"evaluator.init_mode = 'frozen': choose one of full, features, partial", base="train"),
    _cfg("init_mode partial without init_freeze", {"evaluator.init_from": "{tmp}/w.pt", "evaluator.init_mode":
                                                   "partial"},
         r"evaluator.init_mode = 'partial' needs evaluator.init_freeze K", base="train"),
    _cfg("init_freeze without init_from", {"evaluator.init_freeze": 2},
         r"set without evaluator.init_from, the weights they apply to", base="train"),
    _cfg("init_from with an evaluator that trains nothing", {"evaluator.init_from": "{tmp}/w.pt"},
         r"evaluator.init_from = .*only the train evaluator trains candidates from weights, not 'nb201'"),
]

# -- tracking: the search mirrored into Optuna, TensorBoard, MLflow (nas.tracking) -----------------------------------
TRACKING: list[Bad] = [
    _cfg("Optuna study inside trials.db", {"tracking": {"optuna": "sqlite:///trials.db"}},
         r"tracking.optuna = 'sqlite:///trials.db': the Optuna study must not go inside the experiment's trial "
         r"store trials.db; use its own file"),
    _cfg("Optuna storage that is a file name", {"tracking": {"optuna": "study.db"}},
         r"tracking.optuna = 'study.db': give true or an Optuna storage URL such as 'sqlite:///optuna.db'"),
    _cfg("Optuna study in memory", {"tracking": {"optuna": "sqlite:///:memory:"}},
         r"an in-memory database is lost when the search ends"),
    _cfg("unknown tracker", {"tracking": {"wandb": True}},
         r"tracking.wandb: unknown key; allowed: optuna, tensorboard, mlflow"),
    _cfg("unknown MLflow setting", {"tracking": {"mlflow": {"trackinguri": "sqlite:///m.db"}}},
         r"tracking.mlflow.trackinguri: unknown key \(did you mean 'tracking_uri'\?\)"),
    _cfg("MLflow file store", {"tracking": {"mlflow": {"tracking_uri": "mlruns"}}},
         r"tracking.mlflow.tracking_uri = 'mlruns': MLflow 3 refuses file-system stores; give a database"),
    _cfg("TensorBoard folder given as an empty name", {"tracking": {"tensorboard": " "}},
         r"tracking.tensorboard = ' ': give true \(events in tensorboard/ of the experiment\) or a directory"),
    Bad("export-optuna of a folder that holds no experiment", 2, r"is not an experiment directory", base=None,
        args=("export-optuna", "{tmp}")),
]


def _ssl(title: str, options: dict[str, Any], message: str, data: dict[str, Any] | None = None) -> Bad:
    """The self-supervised evaluator on unlabeled images (``{x}`` only), with ``options``."""
    return _npz(title, data or {"x": GOOD_X}, message,
                changes={"evaluator": {"name": "ssl", "task": "npz", "task_options": {"path": "{data}"},
                                       "train": {"epochs": 1}, "options": options}})


# -- the self-supervised evaluator (unlabeled data accepted; what it cannot use refused before the first trial) --------
SSL: list[Bad] = [
    _ssl("ssl: unknown pretext", {"pretext": "jigsaw"},
         r"evaluator.options.pretext = 'jigsaw': choose one of rotation, contrastive, masked"),
    _ssl("ssl: a probe on unlabeled data", {"pretext": "rotation", "probe": {"labels": 0.1}},
         r"evaluator.options.probe = \{labels: 0.1\} needs labels, but task 'npz' holds unlabeled data"),
    _ssl("ssl: probe of no labels", {"pretext": "rotation", "probe": {"labels": 0}},
         r"evaluator.options.probe.labels = 0: must be a fraction in \(0, 1\]"),
    _ssl("ssl: rotation of non-square images", {"pretext": "rotation"},
         r"pretext = 'rotation' needs square images", data={"x": ("normal", (40, 1, 8, 6))}),
    _ssl("ssl: a queue without a momentum encoder", {"pretext": "contrastive", "queue": 64},
         r"evaluator.options.queue = 64 needs a momentum encoder.*add momentum: 0.99"),
    _ssl("ssl: an option of another pretext", {"pretext": "rotation", "mask_ratio": 0.5},
         r"evaluator.options.mask_ratio: not an option of pretext 'rotation'"),
    _ssl("ssl: a mask ratio of 1", {"pretext": "masked", "mask_ratio": 1.0},
         r"evaluator.options.mask_ratio = 1.0: must be a number in \[0.01, 0.99\]"),
]

# -- configs: the gan base (generator search) ------------------------------------------------------------------------
GAN: list[Bad] = [
    _cfg("gan evaluator on a classifier space", {"evaluator": {"name": "gan", "task": "digits"}},
         r"evaluator.name = 'gan' trains generators, but space.name = 'nb201' compiles classifiers"),
    _cfg("nb201 evaluator on the gan space", {"evaluator": {"name": "nb201"}},
         r"evaluator.name = 'nb201' trains or scores classifiers, but space.name = 'gan' compiles generators.*"
         r"evaluator.name = 'gan'", base="gan"),
    _cfg("gan option misspelt", {"evaluator.options.step": 3},
         r"evaluator.options.step is not an option of the gan evaluator.*did you mean 'steps'", base="gan"),
    _cfg("gan loss unknown", {"evaluator.options.loss": "hinge"},
         r"evaluator.options.loss = 'hinge': choose from ns, wgan-gp", base="gan"),
    _cfg("gan steps zero", {"evaluator.options.steps": 0},
         r"evaluator.options.steps = 0: must be an integer >= 1", base="gan"),
    _cfg("wgan-gp critic with batch norm",
         {"evaluator.options.loss": "wgan-gp", "evaluator.options.disc_norm": "batch"},
         r"evaluator.options.disc_norm = 'batch' with loss 'wgan-gp'.*use none or spectral", base="gan"),
    _cfg("gan discriminator norm unknown", {"evaluator.options.disc_norm": "layer"},
         r"evaluator.options.disc_norm = 'layer': choose from batch, spectral, none", base="gan"),
    _cfg("gan eval_samples below 2", {"evaluator.options.eval_samples": 1},
         r"evaluator.options.eval_samples = 1: must be an integer >= 2", base="gan"),
    _cfg("gan evaluator without a task", None, r"evaluator.task: missing; the gan evaluator", base="gan",
         drop=("evaluator.task",)),
    _cfg("gan evaluator on a sequence task", {"evaluator.task": "italy_power"},
         r"evaluator.task = 'italy_power' holds sequence data but space 'gan' builds image models",
         base="gan"),
    _cfg("conditional space, unconditional gan evaluator",
         {"space.options.conditional": True, "evaluator.options.conditional": False},
         r"evaluator.options.conditional = False but space.options.conditional = True", base="gan"),
    _cfg("classifier baseline with the gan evaluator", {"baselines": ["resnet18"]},
         r"baselines\[0\] = 'resnet18': the gan evaluator's baselines are the generator space's references; "
         r"known: dcgan, wgan-gp", base="gan"),
    _cfg("gan baseline misspelt", {"baselines": ["dcgn"]}, r"baselines\[0\] = 'dcgn'.*did you mean 'dcgan'",
         base="gan"),
    _cfg("gan baseline the space cannot express", {"baselines": ["dcgan"],
                                                   "space.options.up_ops": ["up_nearest", "up_bilinear"]},
         r"baselines\[0\] = 'dcgan': gan reference 'dcgan' needs ops", base="gan"),
    _cfg("wgan-gp baseline with a batch-norm critic",
         {"baselines": ["wgan-gp"], "evaluator.options.disc_norm": "batch"},
         r"baselines\[0\] = 'wgan-gp' trains with \{'loss': 'wgan-gp'\}: .*disc_norm = 'batch'", base="gan"),
    _cfg("gan evaluator with a train section", {"evaluator.train": {"epochs": 2}},
         r"evaluator.train = \{'epochs': 2\}: the gan evaluator takes its training settings in evaluator.options",
         base="gan"),
    _cfg("gan feature cache folder not a path", {"evaluator.options.cache_dir": 5},
         r"evaluator.options.cache_dir = 5: must be a folder path", base="gan"),
]

CASES: list[Bad] = CONFIGS + TRAIN + FILES + CLI + NPZ + EXPERIMENTS + BUILDERS + TRANSFER + TRACKING + SSL + GAN
