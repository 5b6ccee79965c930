"""`python -m minicam COMMAND ...` and the console command `minicam COMMAND ...`: explain, evaluate, train
(minicam.apps). Each command's own options: `minicam COMMAND --help`."""
import importlib
import sys

from minicam.apps import COMMANDS

USAGE = "usage: minicam {" + ",".join(COMMANDS) + "} ...\n"


def main(argv=None) -> int:
    """Run the app the first argument names with the rest; no command, or an unknown one, is one message
    on stderr and exit status 2; --help lists the commands."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE + "\n" + "\n".join(f"  {name:<9} {what}" for name, what in COMMANDS.items())
              + "\n\nminicam COMMAND --help: the command's options")
        return 0
    if not argv or argv[0] not in COMMANDS:
        got = f"unknown command {argv[0]!r}" if argv else "a command is needed"
        sys.stderr.write(f"{USAGE}minicam: error: {got}; give one of {', '.join(COMMANDS)} (minicam --help)\n")
        return 2
    app = importlib.import_module(f"minicam.apps.{argv[0]}")  # only the one asked for: train needs no matplotlib
    try:
        return app.main(argv[1:], prog=f"minicam {argv[0]}") or 0
    except SystemExit as stop:  # argparse's exit: its status, for the console script too
        return stop.code if isinstance(stop.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
