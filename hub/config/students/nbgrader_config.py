"""nbgrader in a student's server on the class hub: the exchange and the course, from the environment the hub
gives the server (hub/jupyterhub_config.py); assignments are fetched into the student's home."""
import os

c = get_config()  # noqa: F821 (nbgrader defines it)
c.Exchange.root = os.environ["MINICAM_EXCHANGE"]
c.CourseDirectory.course_id = os.environ["MINICAM_COURSE_ID"]
c.Exchange.assignment_dir = os.path.expanduser("~")
