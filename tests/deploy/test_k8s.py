"""deploy/k8s: every manifest validates against the Kubernetes schemas (kubernetes-validate, offline)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tools import DEPLOY, ROOT, run, tool

K8S = DEPLOY / "k8s"
MANIFESTS = ("configmap.yaml", "pvc.yaml", "deployment.yaml", "service.yaml")
#: The oldest Kubernetes minor still commonly run, and the newest the validator knows.
VERSIONS = ("1.29.0", None)


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((K8S / name).read_text())


def validate(paths: list[Path], version: str | None) -> None:
    args = [tool("kubernetes-validate"), "--strict", "--no-warn"]
    if version:
        args += ["-k", version]
    proc = run(args + [str(p) for p in paths])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == len(paths), proc.stdout


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic-merge patch as kustomize applies it here: maps merge, lists of named items by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    named = isinstance(base, list) and isinstance(patch, list)
    if named and all(isinstance(i, dict) and "name" in i for i in base + patch):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = [n for n, b in enumerate(out) if b["name"] == item["name"]]
            if match:
                out[match[0]] = strategic_merge(out[match[0]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v or "latest")
def test_manifests_validate(version: str | None) -> None:
    validate([K8S / name for name in MANIFESTS], version)


def test_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    doc = load("deployment.yaml")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["paht"] = "/healthz"  # a typo: strict mode refuses it
    container["resources"]["requests"]["cpu"] = {"cores": 2}
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = run([tool("kubernetes-validate"), "--strict", str(path)])
    assert proc.returncode != 0, proc.stdout


def test_gpu_overlay_validates_and_requests_a_gpu(tmp_path: Path) -> None:
    overlay = yaml.safe_load((K8S / "gpu" / "kustomization.yaml").read_text())
    assert overlay["resources"] == [".."]
    (patch_ref,) = overlay["patches"]
    patch = yaml.safe_load((K8S / "gpu" / patch_ref["path"]).read_text())
    base = load("deployment.yaml")
    assert (patch["kind"], patch["metadata"]["name"]) == (base["kind"], base["metadata"]["name"])
    merged = strategic_merge(base, patch)
    path = tmp_path / "deployment-gpu.yaml"
    path.write_text(yaml.safe_dump(merged))
    validate([path], None)
    (container,) = merged["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["cpu"] == "2"  # the base's requests are kept
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DRIFTCAL_UPDATE__DEVICE"] == "cuda"
    assert len(container["env"]) == len(base["spec"]["template"]["spec"]["containers"][0]["env"])
    assert overlay["images"][0]["newTag"].endswith("cuda")


def test_deployment_probes_resources_and_config() -> None:
    deployment = load("deployment.yaml")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert port == 9108
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    config = container["args"][container["args"].index("--config") + 1]
    mount = next(m for m in container["volumeMounts"] if config.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    configmap = load("configmap.yaml")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert config.rsplit("/", 1)[1] in configmap["data"]
    claim = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v)
    assert claim["persistentVolumeClaim"]["claimName"] == load("pvc.yaml")["metadata"]["name"]
    service = load("service.yaml")
    assert service["spec"]["selector"].items() <= deployment["spec"]["selector"]["matchLabels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_configmap_is_the_files_in_configs() -> None:
    data = load("configmap.yaml")["data"]
    assert set(data) == {"calorimeter.yaml", "tracker.yaml"}
    for name, text in data.items():
        assert text == (ROOT / "configs" / name).read_text(), f"{name} differs from configs/{name}"


def test_podmonitor_example() -> None:
    monitor = load("podmonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "PodMonitor"
    labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert monitor["metadata"]["name"] == "driftcal"  # job="<namespace>/driftcal", matched by DriftcalDown


def test_kustomization_lists_the_manifests() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["resources"] == list(MANIFESTS)
    image = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.split(":")[0] == kustomization["images"][0]["name"]
