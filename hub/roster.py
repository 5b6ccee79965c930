"""The class's accounts from a roster: created before term, removed after it.

    python -m hub.roster add ROSTER.csv --lecturer ID --teaching DIR [--teaching DIR ...] [--passwords FILE] [--class-dir DIR]
    python -m hub.roster remove ROSTER.csv [--lecturer ID] [--class-dir DIR]

ROSTER.csv has the header `id,name` and one student a line: `id` becomes the Linux user name (lower case,
as useradd takes it), `name` the account's full name. Run as root.

`add` creates, for each student not yet there, a Linux account with a home folder of its own (0700) in the
group minicam-class, and the lecturer's account (--lecturer, also in that group) if it is not there. Each
new account gets a random password, written to --passwords (default: ROSTER.passwords.csv beside the roster;
root's, 0600, never overwritten) for the lecturer to hand out: they log in to the hub with it (PAM). It
creates the class folder (hub/layout.py) and makes the lecturer the only user who can read the course folder
(the release snapshots, with their solutions and hidden tests, and the gradebook) and each --teaching folder
(required, no default: e.g. the checkout's notebooks/ and .git, which hold the teaching notebooks; never a folder
that holds the environment, which every student's server runs from): owned by the lecturer, mode 0700; the lecturer's home gets `course`, a link to the course folder (formgrader serves only what is below
the home). Adding a roster again adds only who is new.

`remove` deletes the accounts of the roster's students (and of --lecturer, if given) with their home
folders, and takes them out of class.json. It deletes only accounts in the group minicam-class, which `add`
made, never one that was there before; stop the hub first (userdel refuses a user with running processes).
The class folder stays (the gradebook outlives the term); delete it by hand when it is no longer needed.
"""
from __future__ import annotations

import argparse
import csv
import grp
import os
import pwd
import secrets
import subprocess
import sys
from pathlib import Path

from hub.layout import CLASS_GROUP, COURSE_ID, ClassDir, ClassError, check_user_id, chown_tree, write_atomic

CHECKOUT = Path(__file__).resolve().parents[1]


def read_roster(path: Path) -> dict[str, str]:
    """{id: name} from ROSTER.csv, every problem found said at once."""
    if not path.is_file():
        raise ClassError(f"{path}: no such roster file (a CSV with the header id,name)")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip().lower() for c in rows[0]] != ["id", "name"]:
        raise ClassError(f"{path}: the first line must be the header 'id,name', not {','.join(rows[0]) if rows else 'nothing'!r}")
    students, problems = {}, []
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            problems.append(f"line {number}: {len(row)} fields, want 2 (id,name)")
            continue
        sid, name = row[0].strip(), row[1].strip()
        try:
            check_user_id(sid, "the id")
        except ClassError as err:
            problems.append(f"line {number}: {err}")
            continue
        if sid in students:
            problems.append(f"line {number}: the id {sid!r} is there twice")
        if not name or ":" in name or "\n" in name:
            problems.append(f"line {number}: the name of {sid!r} must be non-empty, without ':'")
        students[sid] = name
    if problems:
        raise ClassError(f"{path}: " + "; ".join(problems))
    if not students:
        raise ClassError(f"{path}: no student in it (one 'id,name' line per student after the header)")
    return students


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def _in_class(user: str) -> bool:
    try:
        return user in grp.getgrnam(CLASS_GROUP).gr_mem
    except KeyError:
        return False


def _run(command: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise ClassError(f"{' '.join(command[:2])} ... failed: {(done.stderr or done.stdout).strip()}")


def add(roster: Path, lecturer: str, passwords: Path | None, teaching: list[Path], class_dir: ClassDir) -> list[str]:
    """Create the accounts and the class folder; returns the ids of the accounts made now."""
    students = read_roster(roster)
    check_user_id(lecturer, "the lecturer")
    if lecturer in students:
        raise ClassError(f"the lecturer {lecturer!r} is in the roster too: a lecturer's account is not a student's")
    if os.geteuid() != 0:
        raise ClassError("hub.roster creates Linux accounts: run it as root")
    known = class_dir.read() if class_dir.file.exists() else {"course_id": COURSE_ID, "lecturer": lecturer, "students": {}}
    if known["lecturer"] != lecturer:
        raise ClassError(f"{class_dir.file} names the lecturer {known['lecturer']!r}, not {lecturer!r}")
    taken = [u for u in [lecturer, *students] if _exists(u) and not _in_class(u)]
    if taken:
        raise ClassError(f"accounts {', '.join(taken)} exist already and were not made by hub.roster "
                         f"(not in the group {CLASS_GROUP}): rename them in the roster")
    if not teaching:
        raise ClassError("add needs --teaching DIR (repeatable): each folder that holds the teaching notebooks, "
                         f"e.g. --teaching {CHECKOUT / 'notebooks'} --teaching {CHECKOUT / '.git'}; each becomes "
                         "the lecturer's, mode 0700, so that no student can read the solutions")
    missing = [path for path in teaching if not path.is_dir()]
    if missing:
        raise ClassError(f"--teaching {', '.join(map(str, missing))}: not a folder")
    env = Path(sys.prefix).resolve()
    locking = [path for path in teaching if env == path.resolve() or path.resolve() in env.parents
               or path.resolve() in (Path("/"), Path.home().resolve())]
    if locking:
        raise ClassError(f"--teaching {', '.join(map(str, locking))}: holds the environment ({env}) or is / or a "
                         "home: made 0700 it would lock every student out; name the folders of the teaching "
                         "notebooks only (e.g. the checkout's notebooks/ and .git)")
    new = [u for u in [lecturer, *students] if not _exists(u)]
    passwords = passwords or roster.with_name(roster.stem + ".passwords.csv")
    if new and passwords.exists():
        raise ClassError(f"{passwords} exists: it is never overwritten; move it away or give --passwords FILE")
    try:
        grp.getgrnam(CLASS_GROUP)
    except KeyError:
        _run(["groupadd", "--system", CLASS_GROUP])
    made = {}
    for user in new:
        name = "lecturer" if user == lecturer else students[user]
        _run(["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "--groups", CLASS_GROUP,
              "--comment", name, user])
        os.chmod(pwd.getpwnam(user).pw_dir, 0o700)
        made[user] = secrets.token_urlsafe(9)
    if made:
        _run(["chpasswd"], "".join(f"{u}:{p}\n" for u, p in made.items()))
        write_atomic(passwords, "id,password\n" + "".join(f"{u},{p}\n" for u, p in made.items()), mode=0o600)
    known["students"].update(students)
    _make_folders(class_dir, lecturer, teaching)
    class_dir.write(known)
    return list(made)


def _make_folders(class_dir: ClassDir, lecturer: str, teaching: list[Path]) -> None:
    account = pwd.getpwnam(lecturer)
    class_dir.root.mkdir(parents=True, exist_ok=True)
    os.chmod(class_dir.root, 0o755)
    class_dir.exchange.mkdir(exist_ok=True)
    os.chmod(class_dir.exchange, 0o777)   # nbgrader's release sets (and checks) this mode itself
    class_dir.hub.mkdir(exist_ok=True)
    os.chmod(class_dir.hub, 0o700)
    class_dir.course.mkdir(exist_ok=True)
    chown_tree(class_dir.course, account.pw_uid, account.pw_gid)
    os.chmod(class_dir.course, 0o700)
    for path in teaching:
        os.chown(path, account.pw_uid, account.pw_gid)
        os.chmod(path, 0o700)
    # formgrader serves a course folder only below the lecturer's server root (the home): a link to it there.
    link = Path(account.pw_dir) / "course"
    if link.is_symlink() and Path(os.readlink(link)) == class_dir.course:
        return
    if link.exists() or link.is_symlink():
        raise ClassError(f"{link} exists: it must be free for the link to the course folder {class_dir.course}")
    link.symlink_to(class_dir.course)
    os.chown(link, account.pw_uid, account.pw_gid, follow_symlinks=False)


def remove(roster: Path, lecturer: str | None, class_dir: ClassDir) -> list[str]:
    """Delete the roster's accounts (and the lecturer's, if named) that hub.roster made; returns their ids."""
    students = read_roster(roster)
    if os.geteuid() != 0:
        raise ClassError("hub.roster removes Linux accounts: run it as root")
    users = list(students) + ([check_user_id(lecturer, "the lecturer")] if lecturer else [])
    foreign = [u for u in users if _exists(u) and not _in_class(u)]
    if foreign:
        raise ClassError(f"accounts {', '.join(foreign)} were not made by hub.roster (not in the group "
                         f"{CLASS_GROUP}): not removed; nothing was changed")
    gone = []
    for user in users:
        if _exists(user):
            _run(["userdel", "--remove", user])
            gone.append(user)
    if class_dir.file.exists():
        known = class_dir.read()
        for user in students:
            known["students"].pop(user, None)
        class_dir.write(known)
    return gone


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.roster", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("add", "remove"))
    parser.add_argument("roster", type=Path, help="a CSV with the header id,name")
    parser.add_argument("--lecturer", help="the lecturer's user name (add: required)")
    parser.add_argument("--passwords", type=Path, help="add: where the new accounts' passwords go")
    parser.add_argument("--teaching", type=Path, action="append",
                        help="add (required): a folder only the lecturer may read, e.g. notebooks/ and .git (repeatable)")
    parser.add_argument("--class-dir", type=Path, help="the class folder (default $MINICAM_CLASS or /srv/minicam)")
    args = parser.parse_args(argv)
    class_dir = ClassDir(args.class_dir)
    try:
        if args.action == "add":
            if not args.lecturer:
                raise ClassError("add needs --lecturer ID, the lecturer's user name")
            made = add(args.roster, args.lecturer, args.passwords, args.teaching or [], class_dir)
            where = args.passwords or args.roster.with_name(args.roster.stem + ".passwords.csv")
            print(f"{len(made)} accounts made" + (f", their passwords in {where}" if made else "")
                  + f"; the class is {class_dir.root}")
        else:
            gone = remove(args.roster, args.lecturer, class_dir)
            print(f"{len(gone)} accounts removed: {', '.join(gone) or 'none'}")
    except ClassError as err:
        print(f"hub.roster: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
