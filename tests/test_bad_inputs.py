"""Every bad input of the catalogue (tests/bad_inputs.py) gets its exit code and its message, never a traceback; a
refused ``nas search`` creates no output directory. The table docs/bad_inputs.md is what these cases produce:
regenerate it with ``NAS_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py`` (a test checks it is current).

Cases that misbehave today are ``xfail(strict=True)`` with the issue group that fixes them; remove the mark (in the
catalogue: ``fixed_by``) when the fix lands, then regenerate the table."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from bad_inputs import BASES, CASES, SEARCH, Bad

from nas.cli import main
from nas.storage.lock import ExperimentLock

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "bad_inputs.md"
WRITE = os.environ.get("NAS_WRITE_BAD_INPUTS") == "1"
TITLES = [c.title for c in CASES]


@dataclass(frozen=True)
class Outcome:
    """What a case produced: the exit code (None for a traceback), its message, whether ``{out}`` exists."""

    code: int | None
    message: str
    out_created: bool


def test_catalogue_is_large_and_titles_are_unique() -> None:
    assert len(CASES) >= 150
    assert len(set(TITLES)) == len(TITLES), [t for t in TITLES if TITLES.count(t) > 1]


# -- building a case's inputs ---------------------------------------------------------------------------------------
def _array(spec: tuple[Any, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    kind = spec[0]
    if kind == "normal":
        return rng.normal(size=spec[1])
    if kind == "labels":
        return np.arange(spec[1]) % spec[2]
    if kind == "const":
        return np.full(spec[1], spec[2])
    if kind == "text":
        return np.array([f"sample {i}" for i in range(spec[1])])
    if kind == "object":
        return np.array([{"pixel": i} for i in range(spec[1])], dtype=object)
    if kind in ("nan", "inf"):
        x = rng.normal(size=spec[1])
        x.flat[7] = np.nan if kind == "nan" else np.inf
        return x
    raise ValueError(f"unknown array spec {spec!r}")


def _write_data(case: Bad, tmp: Path) -> None:
    data, path = case.data, tmp / "data.npz"
    if data is None or data == "missing":
        return
    if data == "file":
        (tmp / "file").write_text("a file, not a folder\n")
    elif data == "text":
        path.write_text("x,y\n1,2\n")
    elif data == "directory":
        path.mkdir()
    elif data == "empty":
        path.write_bytes(b"")
    elif data == "npy":
        with path.open("wb") as f:
            np.save(f, _array(("normal", (40, 1, 8, 8))))
    elif data == "truncated":
        np.savez(path, x=_array(("normal", (40, 1, 8, 8))), y=_array(("labels", 40, 2)))
        path.write_bytes(path.read_bytes()[:300])
    elif isinstance(data, dict):
        np.savez(path, **{k: _array(v) for k, v in data.items()})  # type: ignore[arg-type]  # savez's stubs type every array
    else:
        raise ValueError(f"unknown data kind {data!r}")


def _set(config: dict[str, Any], dotted: str, value: Any, drop: bool = False) -> None:
    node = config
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    if drop:
        del node[last]
    else:
        node[last] = value


def _fill(value: Any, places: dict[str, str]) -> Any:
    """``value`` with the placeholders ``{tmp}``, ``{config}``, ``{out}``, ``{exp}``, ``{data}`` filled in."""
    if isinstance(value, str):
        for name, place in places.items():
            value = value.replace("{" + name + "}", place)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, places) for v in value]
    return value


def config_of(case: Bad) -> dict[str, Any] | None:
    """The config data of ``case`` (placeholders unfilled), or None when it has none (or a raw text)."""
    if case.base is None or case.text is not None:
        return None
    config = copy.deepcopy(BASES[case.base])
    for dotted, value in case.changes.items():
        _set(config, dotted, copy.deepcopy(value))
    for dotted in case.drop:
        _set(config, dotted, None, drop=True)
    return config


def _damage(exp: Path, damages: tuple[tuple[Any, ...], ...], held: contextlib.ExitStack) -> None:
    for action, name, *rest in damages:
        if action == "lock":  # another writer: a lock held (in this process, which flock treats alike) until the end
            held.callback(ExperimentLock.acquire(exp).release)
            continue
        if action == "delete" and name == "*":
            for p in list(exp.iterdir()):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            continue
        path = exp / name
        if action == "delete":
            path.unlink()
        elif action == "write":
            path.write_text(rest[0])
        elif action == "empty":
            path.write_bytes(b"")
        elif action == "truncate":
            path.write_bytes(path.read_bytes()[: rest[0]])
        else:
            raise ValueError(f"unknown damage {action!r}")
    for side in ("trials.db-wal", "trials.db-shm"):  # a damaged store must not be repaired from its WAL
        if any(d[1] == "trials.db" for d in damages):
            (exp / side).unlink(missing_ok=True)


def run_case(case: Bad, tmp: Path, template: Path) -> Outcome:
    """Create the inputs of ``case`` in the empty folder ``tmp``, run ``nas`` on them in-process (from ``tmp``),
    and return what came back."""
    places = {"tmp": str(tmp), "config": str(tmp / "cfg.yaml"), "out": str(tmp / "out"), "exp": str(tmp / "exp"),
              "data": str(tmp / "data.npz")}
    _write_data(case, tmp)
    for name, text in case.files.items():
        (tmp / name).write_text(text)
    config = config_of(case)
    if case.text is not None:
        (tmp / "cfg.yaml").write_text(case.text)
    elif config is not None:
        (tmp / "cfg.yaml").write_text(yaml.safe_dump(_fill(config, places), sort_keys=False))
    held = contextlib.ExitStack()
    if case.damage is not None:
        shutil.copytree(template, tmp / "exp")
        _damage(tmp / "exp", case.damage, held)
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp)  # a default `runs/<name>` lands here
    try:
        # warnings (numpy's on NaN data, say) are not the message: record them rather than print them
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
                warnings.catch_warnings(record=True):
            code: int | None = main([_fill(a, places) for a in case.args])
    except SystemExit as exit_:  # argparse
        code = exit_.code if isinstance(exit_.code, int) else 2
    except Exception as err:  # a traceback is an outcome to record, not to propagate
        code, stderr = None, io.StringIO(f"Traceback: {type(err).__name__}: {err}")
    finally:
        os.chdir(cwd)
        held.close()
    message = stderr.getvalue().strip() or stdout.getvalue().strip()
    return Outcome(code, message, (tmp / "out").exists())


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-trial search (NAS-Bench-201 look-ups, local executor) that experiment cases copy and damage."""
    folder = tmp_path_factory.mktemp("template")
    config = folder / "cfg.yaml"
    config.write_text(yaml.safe_dump(BASES["nb201"]))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["search", str(config), "--out", str(folder / "exp"), "--quiet"]) == 0
    return folder / "exp"


_OUTCOMES: dict[str, Outcome] = {}


def _outcome(case: Bad, tmp_path_factory: pytest.TempPathFactory, template: Path) -> Outcome:
    if case.title not in _OUTCOMES:
        tmp = tmp_path_factory.mktemp("case")
        outcome = run_case(case, tmp, template)
        message = outcome.message.replace(str(tmp), "<tmp>")
        # a lock's holder: the same words each run (the table must not change with the pid, host and time)
        message = re.sub(r"process \d+ on host '[^']*' since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                         "process <pid> on host <host> since <time>", message)
        _OUTCOMES[case.title] = Outcome(outcome.code, message, outcome.out_created)
    return _OUTCOMES[case.title]


def _param(case: Bad) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.fixed_by)] if case.fixed_by else []
    return pytest.param(case, id=case.title, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_gets_its_exit_code_and_message(case: Bad, tmp_path_factory: pytest.TempPathFactory,
                                                  template: Path) -> None:
    outcome = _outcome(case, tmp_path_factory, template)
    assert outcome.code is not None, f"a traceback instead of a message: {outcome.message}"
    assert outcome.code == case.code, f"exit {outcome.code}, not {case.code}: {outcome.message[-500:]}"
    assert re.search(case.message, outcome.message, re.I | re.S), \
        f"{case.message!r} not found in the message: {outcome.message[-500:]}"
    if case.code == 2 and case.args[:1] == ("search",):
        assert not outcome.out_created, "a refused search must not create its output directory"
        if case.args == SEARCH:
            assert outcome.message.startswith("error: "), outcome.message


# -- the table in the docs --------------------------------------------------------------------------------------------
def _cell(text: str, limit: int = 260) -> str:
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.replace("|", "\\|")


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def shown(case: Bad) -> str:
    """The input of ``case`` in a few words: the config fields it changes, its file or data, its command line."""
    if case.shown:
        return case.shown
    parts = []
    if case.text is not None:
        parts.append("config file: `" + case.text.encode("unicode_escape").decode("ascii") + "`")
    elif case.base is not None and (case.changes or case.drop or case.data is None):
        edits = [f"{k}: {_flow(v)}" for k, v in case.changes.items()] + [f"no {k}" for k in case.drop]
        if edits:
            parts.append(f"{case.base} config with " + "; ".join(f"`{e}`" for e in edits))
    if isinstance(case.data, dict):
        arrays = ", ".join(f"{k} {_describe(v)}" for k, v in case.data.items())
        parts.append(f"data.npz holding {arrays}")
    elif case.data is not None:
        parts.append({"missing": "no data.npz", "text": "data.npz is a text file", "file": "",
                      "directory": "data.npz is a directory", "empty": "data.npz is empty (0 bytes)",
                      "npy": "data.npz holds a bare .npy array", "truncated": "data.npz cut to 300 bytes"}[case.data])
    if case.damage:
        parts.append("experiment with " + "; ".join(_damage_text(d) for d in case.damage))
    if case.args != SEARCH:
        parts.append("`nas " + " ".join(_fill(list(case.args), SHOWN_PLACES)) + "`")
    return "; ".join(p for p in parts if p)


#: how the placeholders of a command line are shown in the table
SHOWN_PLACES = {"tmp": "<tmp>", "config": "cfg.yaml", "out": "<tmp>/out", "exp": "<tmp>/exp", "data": "data.npz"}


def _describe(spec: tuple[Any, ...]) -> str:
    kind = spec[0]
    if kind == "labels":
        return f"({spec[1]},) labels of {spec[2]} class(es)"
    if kind in ("text", "object"):
        return f"({spec[1]},) {'strings' if kind == 'text' else 'objects'}"
    extra = f" all {spec[2]}" if kind == "const" else {"normal": "", "nan": " with a NaN", "inf": " with an inf"}[kind]
    return f"{tuple(spec[1])}{extra}"


def _damage_text(damage: tuple[Any, ...]) -> str:
    action, name, *rest = damage
    if name == "*":
        return "every file deleted"
    if action == "lock":
        return "its writer lock held by another process"
    if action == "truncate":
        return f"{name} cut to {rest[0]} bytes"
    if action == "write":
        return f"{name} replaced by `{_cell(str(rest[0]), 40)}`"
    return f"{name} {'deleted' if action == 'delete' else 'emptied'}"


def table(outcomes: dict[str, Outcome]) -> str:
    lines = [
        "# Bad inputs and the messages they get",
        "",
        "Generated by `tests/test_bad_inputs.py` from the catalogue `tests/bad_inputs.py` "
        "(regenerate: `NAS_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py`). Each case was run with `nas` "
        "(by default `nas search cfg.yaml --out OUT`) in a scratch folder shown as `<tmp>`. The configs change one "
        "of the valid bases of the catalogue: `nb201` (NAS-Bench-201 look-ups), `train` (the digits task), `npz` "
        "(the user's own `data.npz`) or `gan` (a generator search on digits). Exit 2 is a refused input, 0 a run "
        "that went ahead.",
        "",
        "Rows marked *known issue* show today's behaviour, which issue 12 changes (the group named).",
        "",
        f"{len(CASES)} cases, {sum(1 for c in CASES if not c.fixed_by)} behaving as they should.",
        "",
        "| case | input | exit | message |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        o = outcomes[case.title]
        title = case.title + (f" (*known issue*: {case.fixed_by})" if case.fixed_by else "")
        message = o.message
        if o.code == 0 and case.args[:1] in (("search",), ("resume",)):
            message = "the search ran: " + ("no completed trial" if "no completed trial" in message
                                            else "completed trials ranked")
        elif o.code == 0:
            message = f"`nas {case.args[0]}` ran without an error"
        elif message.count("\n"):
            message = message.strip().splitlines()[-1]  # argparse: usage, then the error
        message = message.removeprefix("error: ")
        code = "traceback" if o.code is None else str(o.code)
        lines.append(f"| {_cell(title, 200)} | {_cell(shown(case), 400)} | {code} | {_cell(message)} |")
    return "\n".join(lines) + "\n"


def test_docs_table_is_what_the_cases_produce(tmp_path_factory: pytest.TempPathFactory, template: Path) -> None:
    """Runs every case not run yet (this test comes last in the module), then compares with docs/bad_inputs.md."""
    outcomes = {c.title: _outcome(c, tmp_path_factory, template) for c in CASES}
    text = table(outcomes)
    if WRITE:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
    assert DOC.is_file() and DOC.read_text() == text, \
        "docs/bad_inputs.md is stale: regenerate it with NAS_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py"

