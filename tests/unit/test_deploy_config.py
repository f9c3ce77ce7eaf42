"""docker-compose.yml and the README must describe what the code really has."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

from replyflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_whole_stack():
    services = compose()["services"]
    expected = {"kafka", "kafka-init", "llm", "vllm", "platform-sim", "ingest", "policy", "generation", "publisher"}
    assert expected <= set(services)
    assert services["vllm"]["profiles"] == ["gpu"]


def test_every_module_compose_runs_exists():
    for name, service in compose()["services"].items():
        command = service.get("command")
        if not command or "python -m" not in command:
            continue
        for module in re.findall(r"python -m ([\w.]+)", command):
            assert importlib.util.find_spec(module) is not None, f"{name} runs missing module {module}"


def test_every_env_var_of_a_replyflow_service_is_a_setting():
    for name, service in compose()["services"].items():
        if name in {"kafka", "vllm", "llm"}:
            continue
        for var in service.get("environment", {}):
            assert var in SETTINGS_ENV, f"{name} sets {var}, which replyflow does not read"


def test_compose_ports_match_the_default_service_ports():
    services = compose()["services"]
    from replyflow.settings import DEFAULT_HTTP_PORTS

    for name, port in DEFAULT_HTTP_PORTS.items():
        assert services[name]["environment"]["HTTP_PORT"] == port


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [var for var in sorted(SETTINGS_ENV) if f"`{var}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"


def test_readme_commands_exist_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in set(re.findall(r"make ([a-z][\w-]+)", readme)):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"README mentions `make {target}`"
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_a_plain_docker_build_makes_the_services_image():
    """Docker builds the last stage by default; the llama.cpp stage compiles for minutes and is the dev CPU model
    server only."""
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", (ROOT / "Dockerfile").read_text(), re.M)
    assert stages[-1] == ("base", "app")
    assert compose()["x-replyflow"]["build"] == {"context": ".", "target": "app"}
