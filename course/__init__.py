"""The course edition of the notebooks: nbgrader exercises, the student edition and sandboxed grading.

- `course.exercises`: the conventions an exercise follows (cell order, nbgrader metadata), their check,
  and `python -m course.exercises --mark NOTEBOOK` that writes the metadata from the cell sources.
- `course.student`: `make student`, the student edition through `nbgrader generate_assignment`.
- `course.grade`: `make grade SUBMISSIONS=dir`, each submission autograded by nbgrader in a sandbox of its
  own (`course.sandbox`, `course.kernel`): the grades, their totals, and feedback without the answer key
  (`course.feedback`).
- `course/nbgrader_config.py`: the nbgrader settings both use.

README.md, "Course edition", is the lecturer's side of the same.
"""
