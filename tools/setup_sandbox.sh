#!/usr/bin/env bash
# The grader (course/grade.py) runs every graded kernel inside bubblewrap (Debian's `bubblewrap`, what Flatpak
# sandboxes with): no network, a read-only view of the system, no view of the teaching notebooks, the gradebook
# or other students' work. Install it if it is missing and we can; otherwise say what to do (grading then stops
# with a message naming --unsandboxed).
if command -v bwrap >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup_sandbox: installing Debian's bubblewrap for the grader's sandbox"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap) >/tmp/minicam-apt-bwrap.log 2>&1 \
    || echo "setup_sandbox: could not install bubblewrap (see /tmp/minicam-apt-bwrap.log); make grade will stop until it is installed"
else
  echo "setup_sandbox: bwrap not found and not root: install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap;"
  echo "Fedora: sudo dnf install bubblewrap), or make grade stops (grading without it needs --unsandboxed, in a VM made for grading)"
fi
exit 0
