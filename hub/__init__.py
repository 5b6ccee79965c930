"""A class on one machine with JupyterHub and nbgrader's exchange (README, "A class on JupyterHub").

    python -m hub.roster add|remove ROSTER.csv --lecturer ID [--teaching DIR]   the accounts (hub/roster.py)
    make hub  (python -m hub.serve)                              the hub (hub/serve.py, hub/jupyterhub_config.py)
    python -m hub.course release|collect|grade|return ...        the lecturer's round (hub/course.py)

hub/layout.py says where each of them keeps what.
"""
