"""nbgrader in the lecturer's server on the class hub: formgrader over the course folder that hub/course.py keeps
(its gradebook holds the points of the project's sandboxed grader; course/autograded/ the graded notebooks).

formgrader's own Autograde runs every student's code in the lecturer's server, as the lecturer, with no
sandbox: it could read the solutions and rewrite the gradebook. Its Generate Feedback makes pages from the
teaching edition's cells, hidden tests included. Both are turned off here: each runs one step only, `Refuse`,
which fails every notebook before anything of it runs, with a message saying what to run instead (as root;
README, "A class on JupyterHub"). (nbgrader's pre_convert_hook cannot do it: nbgrader logs a failing hook and
carries on.)
"""
import os

from nbgrader.preprocessors import NbGraderPreprocessor

c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.root = os.environ["MINICAM_COURSE_DIR"]
c.CourseDirectory.course_id = os.environ["MINICAM_COURSE_ID"]
c.Exchange.root = os.environ["MINICAM_EXCHANGE"]


class Refuse(NbGraderPreprocessor):
    """Fails the notebook, saying which command of hub.course does this step on this hub."""

    def preprocess(self, nb, resources):
        step = resources.get("nbgrader", {}).get("assignment", "ASSIGNMENT")
        raise RuntimeError(f"turned off on this hub (it would run student code unsandboxed, or show hidden tests): "
                           f"run `python -m hub.course grade {step}` and `python -m hub.course return {step}` "
                           "as root instead")


c.Autograde.sanitize_preprocessors = [Refuse]
c.Autograde.autograde_preprocessors = [Refuse]
c.GenerateFeedback.preprocessors = [Refuse]
