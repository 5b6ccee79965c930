"""`python -m minicam COMMAND` and the console command `minicam` (pyproject's [project.scripts]): the
command runs its app with the rest of the arguments; no command or an unknown one is one message and
exit status 2. (`python -m minicam train` itself runs in test_train.py, `python -m minicam explain` and
`evaluate` in theirs.)"""
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

import minicam
from minicam.__main__ import main
from minicam.apps import COMMANDS

ROOT = Path(minicam.__file__).parents[1]


def test_the_console_command_is_this_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["minicam"].partition(":")
    assert getattr(import_module(module), function) is main
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "minicam.apps" in packages


def test_no_command_or_an_unknown_one_is_one_message_and_exit_2(capsys):
    for argv, said in (([], "a command is needed"), (["explian"], "unknown command 'explian'")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: minicam {explain,evaluate,train}") and said in err and err.count("error:") == 1
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in COMMANDS)


def test_the_command_runs_the_app_with_the_rest_of_the_arguments(capsys, tmp_path):
    assert main(["train", "shapes_vgg", "--epochs", "0", "--out", str(tmp_path / "m.pt")]) == 2   # argparse's exit
    err = capsys.readouterr().err
    assert err.startswith("usage: minicam train") and "--epochs must be" in err
    assert main(["explain", "--model", "shapes_resnet", "--list-layers"]) == 0
    assert "layer4" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_commands_help_names_it(command, capsys):
    assert main([command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: minicam {command}")
