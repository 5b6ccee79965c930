"""The way to Kubernetes, as far as it can be checked without a cluster (README, "A class on JupyterHub").

- The single-user image's pinned set (k8s/Dockerfile: pyproject.toml's extras under constraints.txt, for the
  image's Python) resolves on PyPI for linux x86_64 as wheels, each package at its pin (`uv pip compile
  --python-platform x86_64-manylinux_2_28 --only-binary :all:`); skips when PyPI cannot be reached.
- k8s/values.yaml (Zero to JupyterHub), k8s/class-volumes.yaml and k8s/grade-job.yaml parse as YAML; the
  exchange and the course folder are ReadWriteMany claims; the role hook in values.yaml, run with stand-ins
  for KubeSpawner, gives a student the exchange only and the lecturer the course folder too; students' servers
  have no egress but DNS; a grading pod is non-root with a read-only root file system, limits and no network,
  and its command uses only options that course.grade has.
Not checked: the chart's own schema (the chart is on no package registry reachable here), an image build.
"""
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
UV = Path(sys.executable).parent / "uv"


def load(name):
    return list(yaml.safe_load_all((K8S / name).read_text()))


def pins():
    """{name: {versions}} of constraints.txt (a name may have one pin per platform marker)."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            found.setdefault(match[1].lower().replace("_", "-"), set()).add(match[2])
    return found


def test_the_image_pinned_set_resolves_for_linux_x86_64(tmp_path):
    dockerfile = (K8S / "Dockerfile").read_text()
    python = re.search(r"^FROM python:(\d+\.\d+)-", dockerfile, re.M)[1]
    extras = re.search(r'pip install --constraint constraints\.txt "\.\[([a-z,]+)\]"', dockerfile)[1].split(",")
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10)
    except (urllib.error.URLError, OSError) as err:
        pytest.skip(f"PyPI cannot be reached ({err}): the image's set is not resolved here")
    lock = tmp_path / "image.txt"
    done = subprocess.run(
        [str(UV), "pip", "compile", str(ROOT / "pyproject.toml"), *[f"--extra={e}" for e in extras],
         "--constraint", str(ROOT / "constraints.txt"), "--python-version", python,
         "--python-platform", "x86_64-manylinux_2_28", "--only-binary", ":all:", "--no-header", "--quiet",
         "--output-file", str(lock)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the image's pinned set does not resolve for linux x86_64:\n{done.stderr}"
    resolved = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), re.M))
    resolved = {name.lower().replace("_", "-"): version for name, version in resolved.items()}
    pinned = pins()
    off = {name: (version, pinned[name]) for name, version in resolved.items()
           if name in pinned and version not in pinned[name]}
    assert off == {}, f"resolved off the pins (resolved, pinned): {off}"
    unpinned = sorted(set(resolved) - set(pinned))
    assert unpinned == [], f"the image would install packages constraints.txt does not pin: {unpinned}"
    for name in ("torch", "jupyterhub", "jupyterlab", "nbgrader"):
        assert name in resolved, f"{name} is not in the image"


def test_the_class_volumes_are_shared():
    claims = {doc["metadata"]["name"]: doc for doc in load("class-volumes.yaml")}
    assert set(claims) == {"minicam-exchange", "minicam-course"}
    for claim in claims.values():
        assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]


def run_role_hook(values, user):
    """The extraConfig of values.yaml, executed as the chart's jupyterhub_config.py would, then its hook called
    for `user` with a stand-in spawner; returns the spawner."""
    c = Config()
    for name, code in values["hub"]["extraConfig"].items():
        exec(compile(code, f"values.yaml:hub.extraConfig.{name}", "exec"), {"c": c, "get_config": lambda: c})
    spawner = SimpleNamespace(user=SimpleNamespace(name=user), environment={}, volumes=[], volume_mounts=[], uid=None)
    c.KubeSpawner.pre_spawn_hook(spawner)
    return spawner


def test_values_give_each_role_its_folders():
    [values] = load("values.yaml")
    single = values["singleuser"]
    assert single["uid"] != 0 and single["memory"]["limit"] and single["cpu"]["limit"]
    [exchange] = single["storage"]["extraVolumeMounts"]
    [volume] = single["storage"]["extraVolumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == "minicam-exchange"
    assert exchange["mountPath"] == "/srv/nbgrader/exchange"

    student = run_role_hook(values, "kim_minji")
    lecturer = run_role_hook(values, "lecturer")
    assert student.environment["JUPYTER_CONFIG_PATH"] == "/opt/minicam/hub/config/students"
    assert lecturer.environment["JUPYTER_CONFIG_PATH"] == "/opt/minicam/hub/config/lecturer"
    for spawner in (student, lecturer):
        assert spawner.environment["MINICAM_EXCHANGE"] == exchange["mountPath"]
        role = Path(spawner.environment["JUPYTER_CONFIG_PATH"]).name
        assert (ROOT / "hub" / "config" / role / "nbgrader_config.py").is_file()
    assert student.volumes == [] and "MINICAM_COURSE_DIR" not in student.environment
    assert [v["persistentVolumeClaim"]["claimName"] for v in lecturer.volumes] == ["minicam-course"]
    assert lecturer.volume_mounts[0]["mountPath"] == lecturer.environment["MINICAM_COURSE_DIR"]
    assert student.uid != lecturer.uid and 0 not in (student.uid, lecturer.uid)
    # The image copies hub/config to /opt/minicam/hub/config.
    assert "COPY hub/config ./hub/config" in (K8S / "Dockerfile").read_text()
    assert "WORKDIR /opt/minicam" in (K8S / "Dockerfile").read_text()

    rules = single["networkPolicy"]["egressAllowRules"]
    assert single["networkPolicy"]["enabled"] is True
    assert {k for k, allowed in rules.items() if allowed} == {"dnsPortsKubeSystemNamespace"}


def test_a_grading_pod_is_its_own_sandbox():
    job, policy = load("grade-job.yaml")
    assert job["kind"] == "Job" and policy["kind"] == "NetworkPolicy"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory", "ephemeral-storage"} <= set(container["resources"]["limits"])
    assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["backoffLimit"] == 0
    # The only writable places: its own output folder and /tmp; the submission and the snapshot are read-only.
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert sorted(writable) == ["/grading/out", "/tmp"]
    # No network at all for the pods the Job makes.
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == [] and policy["spec"]["ingress"] == []
    # Its command is course.grade's, with options that course.grade has.
    command = container["command"]
    assert command[:3] == ["python", "-m", "course.grade"]
    usage = subprocess.run([sys.executable, "-m", "course.grade", "--help"], cwd=ROOT, capture_output=True,
                           text=True).stdout
    missing = [flag for flag in command if flag.startswith("--") and flag not in usage]
    assert missing == [], f"course.grade has no option {missing}"
