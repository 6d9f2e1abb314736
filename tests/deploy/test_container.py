"""deploy/Dockerfile and deploy/compose.yaml: linted and validated with real tools, and the stack's shape.

No Docker engine is needed (nor used): hadolint lints the Dockerfile, check-jsonschema validates the
compose file against the Compose Specification schema it vendors (offline).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .tools import DEPLOY, ROOT, run, tool

DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1]) for l in joined.splitlines() if l.strip()]


def test_hadolint_finds_nothing() -> None:
    proc = run([tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_cpu_and_cuda_non_root_healthcheck() -> None:
    steps = instructions(DOCKERFILE.read_text())
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and all("slim" in s for s in stages), stages
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    assert ("ARG", "TORCH_VARIANT=cpu") in steps
    install = next(args for op, args in steps if op == "RUN" and "TORCH_VARIANT" in args)
    assert "cpu)" in install and "cuda)" in install and "--index-url" in install
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    (health,) = [args for op, args in final if op == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health
    assert ("EXPOSE", "9108") in final
    entry = [args for op, args in final if op in ("ENTRYPOINT", "CMD")]
    assert entry == ['["driftcal"]', '["run", "--config", "/etc/driftcal/calorimeter.yaml"]']
    copied = [args.split()[0] for op, args in steps if op == "COPY" and "--from" not in args]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for source in copied:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, f"{source} is excluded from the context"


def test_compose_files_validate_against_the_compose_spec() -> None:
    gpu = DEPLOY / "compose.gpu.yaml"
    proc = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE), str(gpu)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    daemon = yaml.safe_load(gpu.read_text())["services"]["driftcal"]
    assert daemon["build"]["args"]["TORCH_VARIANT"] == "cuda"
    assert daemon["environment"]["DRIFTCAL_UPDATE__DEVICE"] == "cuda"
    (device,) = daemon["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    doc = compose()
    doc["services"]["driftcal"]["healthcheck"]["interval"] = ["15s"]  # must be a string
    doc["services"]["kafka"]["restart_policy"] = "always"  # no such key
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc))
    proc = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)])
    assert proc.returncode != 0, proc.stdout


def test_compose_stack_services_ports_volumes_healthchecks() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"kafka", "kafka-topics", "simulate", "daq", "driftcal", "prometheus", "grafana"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"] and env["CLUSTER_ID"]
    script = services["kafka-topics"]["command"][0]
    for topic in ("driftcal.events", "driftcal.reference", "driftcal.coefficients", "driftcal.dlq"):
        assert f"--topic {topic} " in script, topic
    coefficients = script.split("--topic driftcal.coefficients", 1)[1].split("$${topics}", 1)[0]
    assert "cleanup.policy=compact" in coefficients
    assert "replay" in services["daq"]["command"][0]
    assert services["daq"]["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    daemon = services["driftcal"]
    assert daemon["build"]["dockerfile"] == "deploy/Dockerfile" and daemon["build"]["context"] == ".."
    assert daemon["command"][:2] == ["run", "--config"]
    assert daemon["environment"]["DRIFTCAL_KAFKA__BOOTSTRAP"] == "kafka:9092"
    assert "/healthz" in " ".join(daemon["healthcheck"]["test"])
    ports = {name: [p.rsplit(":", 1)[-1] for p in services[name].get("ports", [])] for name in services}
    assert ports["driftcal"] == ["9108"] and ports["prometheus"] == ["9090"]
    assert ports["grafana"] == ["3000"] and ports["kafka"] == ["9094"]
    for name in ("kafka", "driftcal", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    named = set(doc["volumes"])
    assert named == {"kafka-data", "sim-data", "driftcal-state", "prometheus-data", "grafana-data"}
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), volume
            else:
                assert source in named, volume
    prom = services["prometheus"]["volumes"]
    assert "./prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in prom
    config = (COMPOSE.parent / "prometheus" / "prometheus.yml").read_text()
    assert "driftcal:9108" in config and "job_name: driftcal" in config
