"""Every CLI default has one value: the flag's default is its config field's, and help text that states a
default states that one."""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest

from synthmatch.cli import build_parser
from synthmatch.datagen.generate import GenerateConfig
from synthmatch.datagen.ingest import IngestConfig
from synthmatch.evaluation.benchmark import EvalConfig
from synthmatch.inference.pipeline import InferConfig
from synthmatch.training.loop import TrainConfig
from synthmatch.web.demo import DemoConfig

CONFIGS = {
    "generate": GenerateConfig,
    "ingest": IngestConfig,
    "train": TrainConfig,
    "infer": InferConfig,
    "demo": DemoConfig,
    "eval": EvalConfig,
}
# flags whose None leaves the config's own default in place (the run function does not pass them)
NONE_MEANS_CONFIG_DEFAULT = {("eval", "methods")}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _flags(p: argparse.ArgumentParser):
    return [a for a in p._actions if a.dest != "help" and a.option_strings]


@pytest.mark.parametrize("command", sorted(CONFIGS))
def test_flag_defaults_are_the_config_defaults(command):
    fields = {f.name: f for f in dataclasses.fields(CONFIGS[command])}
    checked = 0
    for action in _flags(_subparsers()[command]):
        field = fields.get(action.dest) or fields.get(f"{action.dest}_s")
        if field is None:
            continue
        want = _field_default(field)
        if want is dataclasses.MISSING or (
            action.default is None and (command, action.dest) in NONE_MEANS_CONFIG_DEFAULT
        ):
            continue
        got = tuple(action.default) if isinstance(action.default, list) else action.default
        assert got == want, f"{command} --{action.dest}: flag default {got!r}, {field.name} default {want!r}"
        checked += 1
    assert checked >= 5


def test_help_text_states_the_real_default():
    """A help text that says "(default X)" says the flag's own default: most take it from the flag
    (`%(default)s`), and those that write it out must not drift."""
    wrong, stated_count = [], 0
    for command, p in _subparsers().items():
        for action in _flags(p):
            m = re.search(
                r"\(default:? ([-\w./,]+?)[);]",
                p._get_formatter()._expand_help(action) if action.help else "",
            )
            if not m or action.default is None or isinstance(action.default, bool):
                continue
            stated, real = m.group(1), action.default
            stated_count += 1
            forms = {str(real)} | (
                {"/".join(map(str, real)), ",".join(map(str, real))} if isinstance(real, tuple) else set()
            )
            same = stated.rstrip("/") in forms  # a folder may be written with its slash
            if not same:
                try:
                    same = float(stated) == float(real)
                except (TypeError, ValueError):
                    same = False
            if not same:
                wrong.append(
                    f"{command} {action.option_strings[-1]}: help says {stated}, default is {real!r}"
                )
    assert wrong == [] and stated_count >= 20, (wrong, stated_count)


def test_every_option_says_its_default():
    """Every option that takes a value says in its help what it is when not given: `%(default)s`, or
    words ("default: estimated", "default: every core"). Switches (store_true...) and required options
    need not."""
    silent = []
    for command, p in _subparsers().items():
        for action in _flags(p):
            if action.nargs == 0 or action.required:
                continue
            text = p._get_formatter()._expand_help(action) if action.help else ""
            if "default" not in text:
                silent.append(f"{command} {action.option_strings[-1]}")
    assert silent == [], f"options whose help does not say their default: {silent}"
