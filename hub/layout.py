"""Where the class lives: one folder (default /srv/minicam, or $MINICAM_CLASS, or --class-dir) holding

    class.json   the course id, the lecturer and the students (root's, 0600): hub/roster.py writes it,
                 the hub reads it for who may log in, hub/course.py for whom to grade
    exchange/    nbgrader's exchange (root's; nbgrader's own modes: 0777 here, and below it outbound/ 0755,
                 inbound/ 2733, feedback/ 0711, which nbgrader's release sets)
    course/      nbgrader's course folder (the lecturer's, 0700): source/ (the release snapshots, with solutions
                 and hidden tests), release/ (the student edition), submitted/, feedback/, gradebook.db,
                 released/<NN_topic>.ipynb (the snapshots as the grader reads them), grading/ (the grader's
                 input and output), assignments.json (the due dates)
    hub/         JupyterHub's own state (root's, 0700): its database, cookie secret and logs

Every command that changes the class runs as root and leaves course/ owned by the lecturer.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import tempfile
from pathlib import Path

DEFAULT_CLASS_DIR = Path(os.environ.get("MINICAM_CLASS", "/srv/minicam"))
COURSE_ID = "minicam"
CLASS_GROUP = "minicam-class"   # every account hub.roster created, and only those (remove deletes only them)
# A Linux user name that useradd takes everywhere: lower case, starts with a letter or _, at most 32 characters.
USER_ID = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class ClassError(ValueError):
    """What was asked of the class cannot be done as asked; the message says what would work."""


def check_user_id(value: str, what: str) -> str:
    if not USER_ID.fullmatch(value):
        raise ClassError(f"{what} {value!r} is not a Linux user name: use lower-case letters, digits, '_' or '-', "
                         "starting with a letter or '_', at most 32 characters (e.g. 'kim_minji')")
    return value


class ClassDir:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root or DEFAULT_CLASS_DIR).absolute()
        self.file = self.root / "class.json"
        self.exchange = self.root / "exchange"
        self.course = self.root / "course"
        self.hub = self.root / "hub"

    def read(self) -> dict:
        """class.json: {"course_id", "lecturer", "students": {id: name}}; a clear error if there is none."""
        if not self.file.is_file():
            raise ClassError(f"{self.file} does not exist: create the class first with "
                             f"`python -m hub.roster add ROSTER.csv --lecturer ID --class-dir {self.root}`")
        return json.loads(self.file.read_text())

    def write(self, data: dict) -> None:
        write_atomic(self.file, json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o600)

    def lecturer(self) -> pwd.struct_passwd:
        return pwd.getpwnam(self.read()["lecturer"])


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """`text` to `path` through a temporary file in the same folder, then renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """`path` and everything below it owned by uid:gid (symlinks themselves, never their targets)."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
