"""JupyterHub for one class on one machine (`make hub`, which runs hub/serve.py; README, "A class on JupyterHub").

hub/serve.py starts JupyterHub with this file and sets, in its environment, the class folder (MINICAM_CLASS,
hub/layout.py), the free ports it found and the hub's run id (MINICAM_HUB_ID, which every process of the hub
carries, so that serve.py can check that none is left when the hub stops).

- Who: the students of class.json (hub/roster.py made their Linux accounts) and the lecturer, nobody else.
- Login: PAM, with the accounts' own passwords (hub/roster.py sets them): the accounts are real, so their
  passwords are the machine's; nothing else to run. A university would put its single sign-on here instead
  (oauthenticator's GenericOAuthenticator or the LTI authenticator), mapping each login to the same user name.
- Servers: JupyterHub's LocalProcessSpawner, which starts each user's JupyterLab as that Linux user in the
  user's home folder (0700): students cannot read each other's work, and their code runs with their rights.
- nbgrader: each server gets a Jupyter config folder for its role, hub/config/students or hub/config/lecturer:
  students have the assignment list (fetch, submit, fetch feedback) and validate; the lecturer has formgrader
  over the course folder, with its Autograde and Generate Feedback turned off (hub/config/lecturer/nbgrader_config.py).
- The proxy: configurable-http-proxy from hub/node_modules (hub/package-lock.json pins it), on 127.0.0.1.
"""
import os
import pwd
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the checkout, for hub.layout
from hub.layout import ClassDir  # noqa: E402

c = get_config()  # noqa: F821 (JupyterHub defines it)

HERE = Path(__file__).resolve().parent
class_dir = ClassDir(os.environ["MINICAM_CLASS"])
known = class_dir.read()
lecturer = known["lecturer"]

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ["MINICAM_HUB_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["MINICAM_HUB_API_PORT"])
c.JupyterHub.db_url = f"sqlite:///{class_dir.hub / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(class_dir.hub / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True   # stopping the hub stops every user's server
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['MINICAM_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.pid_file = str(class_dir.hub / "proxy.pid")

c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False   # no login session (utmp, systemd-logind) for a web login
c.Authenticator.allowed_users = set(known["students"]) | {lecturer}

c.JupyterHub.spawner_class = "localprocess"
# The Python that hub/serve.py found the users can run (this venv's, or <class>/env where this one is in a folder
# they cannot enter), with the venv's packages.
USER_PYTHON = Path(os.environ["MINICAM_USER_PYTHON"])
PREFIX = Path(sys.prefix)
c.Spawner.cmd = [str(USER_PYTHON), "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60


def role_environment(spawner):
    """The server's nbgrader config folder and the class's paths, by the user's role."""
    role = "lecturer" if spawner.user.name == lecturer else "students"
    spawner.environment.update({
        # The role's folder first, then this environment's own (which enables JupyterLab and nbgrader); its data
        # (the lab extensions) and JupyterLab's application folder: where <class>/env runs the server, its
        # own sys.prefix has none of them.
        "JUPYTER_CONFIG_PATH": os.pathsep.join([str(HERE / "config" / role), str(PREFIX / "etc" / "jupyter")]),
        "JUPYTER_PATH": str(PREFIX / "share" / "jupyter"),
        "JUPYTERLAB_DIR": str(PREFIX / "share" / "jupyter" / "lab"),
        "MINICAM_EXCHANGE": str(class_dir.exchange),
        "MINICAM_COURSE_ID": known["course_id"],
        "MINICAM_HUB_ID": os.environ["MINICAM_HUB_ID"],
        "PATH": f"{USER_PYTHON.parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
    })
    if role == "lecturer":
        # The link hub/roster.py made in the lecturer's home: formgrader wants the course below the server's root.
        spawner.environment["MINICAM_COURSE_DIR"] = str(Path(pwd.getpwnam(lecturer).pw_dir) / "course")


c.Spawner.pre_spawn_hook = role_environment

# Settings of a run beyond these (the tests' own, or a course's), from a file hub/serve.py was given.
if os.environ.get("MINICAM_HUB_EXTRA_CONFIG"):
    load_subconfig(os.environ["MINICAM_HUB_EXTRA_CONFIG"])  # noqa: F821 (JupyterHub defines it)
