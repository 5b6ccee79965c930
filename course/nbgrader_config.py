"""nbgrader settings shared by `make student` (generate_assignment) and `make grade` (autograde).

course/student.py and course/grade.py copy this file into the temporary course directory they run
nbgrader in; nbgrader reads it from there. See README.md, "Course edition".
"""
c = get_config()  # noqa: F821 (nbgrader defines it)

# The teaching notebooks collapse answer and test cells (jupyter.source_hidden) so that a reader sees
# the question first; the student edition shows the stubs open.
c.ClearOutput.remove_metadata_fields = {"collapsed", "scrolled", "jupyter"}

# A test cell the student deleted is put back and run, so deleting it cannot keep its points (or lose
# them: a deleted cell would otherwise score nothing).
c.OverwriteCells.add_missing_cells = True

# The per-cell limit; course/grade.py sets it from --cell-timeout (make grade CELL_TIMEOUT=...).
c.Execute.timeout = 60
# After a cell's reply nbgrader waits this long for the rest of its output and otherwise fails the whole
# notebook. The default, 4 s, is too short for a kernel on a busy machine that has just been interrupted
# at the cell limit (seen here: a submission lost every point that way).
c.Execute.iopub_timeout = 30
