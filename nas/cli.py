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
