"""The ``nas`` command line: parses arguments, calls the library, prints. No logic of its own.

Exit codes: 0 success, 2 bad input (any :class:`~nas.exceptions.NASError`), 1 other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nas.exceptions import NASError

__all__ = ["main"]


def _cmd_spaces(args: argparse.Namespace) -> int:
    from search_spaces import get_space, list_spaces

    rows = []
    for name in list_spaces():
        space = get_space(name)
        rows.append({"name": name, "input": space.input_kind, "decisions": len(space.decision_sizes()),
                     "size": space.size(), "options": space.options()})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<12} {r['input']:<9} {r['decisions']:>3} decisions  {r['size']:.4g} members")
    return 0


def _cmd_references(args: argparse.Namespace) -> int:
    from nas import references

    for name in references.list_references():
        print(f"{name:<12} {references.input_kind(name)}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from search_spaces import get_space

    space = get_space(args.space)
    arch = space.sample(np.random.default_rng(args.seed))
    print(arch.to_json(indent=2))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from search_spaces import get_space, list_spaces

    print("nasgraph demo: one sampled architecture per space, compiled and run once on random input.")
    rng = np.random.default_rng(0)
    import torch

    for name in list_spaces():
        space = get_space(name)
        arch = space.sample(rng)
        shape = (3, 32, 32) if space.input_kind == "image" else (64, 3)
        model = space.build_model(arch, shape, 10)
        out = model(torch.randn(2, *shape))
        params = sum(p.numel() for p in model.parameters())
        print(f"  {name:<12} hash {arch.canonical_hash()[:12]}  {params:>9,} params  output {tuple(out.shape)}")
    print("The search loop, Ray execution and export are not built yet; `make demo` will run the quickstart")
    print("search (experiments/quickstart.yaml) once they land.")
    return 0


def _parse_options(items: list[str]) -> dict[str, object]:
    import yaml

    from nas.exceptions import ConfigError

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r}: write key=value, e.g. --option population=50")
        options[key] = yaml.safe_load(value)
    return options


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from nas.nb201_benchmark import plot_curves, run_benchmark

    torch_threads()
    report = run_benchmark(args.strategy, queries=args.queries, seeds=args.seeds, dataset=args.dataset,
                           dedup=not args.no_dedup, options=_parse_options(args.option))
    plot = args.plot or f"benchmark_nb201_{args.strategy}_{args.dataset}.png"
    plot_curves([report], plot)
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"NAS-Bench-201 {args.dataset}: {args.strategy}, {args.seeds} seeds, {args.queries} queries "
          f"({report.seconds:.1f} s, strategy overhead {report.overhead_ms():.2f} ms per query)")
    for q, stats in summary["queries"].items():
        print(f"  {q:>4} queries: {stats['mean']:.2f} +- {stats['std']:.2f}")
    print(f"best-so-far curves: {plot}")
    return 0


def torch_threads() -> None:
    """One intra-op thread: the benchmark's torch work (RL controller) is tiny and threads only add cost."""
    import torch

    torch.set_num_threads(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Neural architecture search on graph-encoded cells.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("spaces", help="list the search spaces")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_spaces)
    p = sub.add_parser("references", help="list the reference architectures")
    p.set_defaults(func=_cmd_references)
    p = sub.add_parser("sample", help="print a random architecture of a space as JSON")
    p.add_argument("space")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_sample)
    p = sub.add_parser("benchmark", help="benchmark a strategy on a tabular benchmark")
    p.add_argument("benchmark", choices=["nb201"])
    p.add_argument("--strategy", required=True)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet16-120"])
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option")
    p.add_argument("--no-dedup", action="store_true", help="query isomorphic cells again")
    p.add_argument("--plot", help="where to write the best-so-far plot (PNG)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.set_defaults(func=_cmd_benchmark)
    p = sub.add_parser("demo", help="the quickstart")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NASError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
