#!/usr/bin/env python3
"""Checks docker-compose.kafka.yml without Docker (CI has no Docker daemon).

Usage: compose-check.py [COMPOSE_FILE]   (default: docker-compose.kafka.yml beside scripts/)
       compose-check.py --self-test      (checks that every rule below fires on a broken file)

Rules:
  - the file is valid YAML (duplicate keys rejected) with a non-empty `services` mapping;
  - every service has `image` or `build`; no `network_mode: host`;
  - every `depends_on` names an existing service with a known condition; `service_healthy`
    targets have a healthcheck; `service_completed_successfully` targets are one-shot jobs
    (restart "no");
  - every published port binds 127.0.0.1, and no host port is published twice;
  - every long-running service has a healthcheck (one-shot jobs excepted);
  - Switchyard services (image `switchyard[:tag]`) run a known role command: ingress,
    stream <session-nps|judge|regression>, projector, sink; every role is deployed and ingress
    has at least 2 replicas; they set SWITCHYARD__LOG__URL (kafka://), SWITCHYARD__STORE__URL
    (scylla://) and SWITCHYARD__SCHEMA_REGISTRY__URL (http[s]://), whose hosts are services of
    this file; every SWITCHYARD__* variable names a key of crates/config/default.toml; their
    healthcheck requests /readyz.

Prints `compose-check: N services OK` and exits 0, or prints every problem and exits 1.
Needs Python 3.11+ and PyYAML (tests/requirements.txt).
"""

from __future__ import annotations

import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    sys.stderr.write("compose-check: PyYAML is missing; run `make deps` (tests/requirements.txt)\n")
    sys.exit(2)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COMPOSE = REPO_ROOT / "docker-compose.kafka.yml"
DEFAULT_CONFIG = REPO_ROOT / "crates" / "config" / "default.toml"

SWITCHYARD_IMAGE = "switchyard"
STREAMS = ("session-nps", "judge", "regression")
ROLES = ("ingress", *(f"stream {s}" for s in STREAMS), "projector", "sink")
MIN_INGRESS_REPLICAS = 2
REQUIRED_ENV = {
    "SWITCHYARD__LOG__URL": ("kafka://",),
    "SWITCHYARD__STORE__URL": ("scylla://",),
    "SWITCHYARD__SCHEMA_REGISTRY__URL": ("http://", "https://"),
}
ENV_PREFIX = "SWITCHYARD__"
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
LOOPBACK = "127.0.0.1"


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate mapping keys, as Compose does."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def config_keys(default_toml: Path) -> set[str] | None:
    """Returns the dotted keys of default.toml (`server.listen`, `data_dir`), or None if absent."""
    if not default_toml.is_file():
        return None
    keys: set[str] = set()

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{path}.")
            else:
                keys.add(path)

    walk(tomllib.loads(default_toml.read_text()), "")
    return keys


def as_env(environment: Any) -> dict[str, str | None]:
    """Normalises `environment` (mapping or list of KEY=VALUE) to a dict."""
    if isinstance(environment, dict):
        return {str(k): None if v is None else str(v) for k, v in environment.items()}
    out: dict[str, str | None] = {}
    for item in environment or []:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def as_command(command: Any) -> list[str]:
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def depends_on(service: dict) -> dict[str, str]:
    """Normalises `depends_on` (list or mapping) to {service: condition}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(name): "service_started" for name in deps}
    return {str(name): str((spec or {}).get("condition", "service_started")) for name, spec in deps.items()}


def is_switchyard(service: dict) -> bool:
    image = str(service.get("image", ""))
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return name == SWITCHYARD_IMAGE


def replicas(service: dict) -> int:
    deploy = service.get("deploy") or {}
    return int(deploy.get("replicas", 1))


def published_ports(name: str, service: dict, problems: list[str]) -> list[tuple[str, str]]:
    """Returns (host_ip, host_port) of every published port, reporting unparseable ones."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            published = port.get("published")
            if published is None:
                problems.append(f"{name}: port {port} publishes a random host port on every interface")
                continue
            out.append((str(port.get("host_ip", "")), str(published)))
            continue
        spec = str(port).split("/", 1)[0]
        if spec.startswith("["):
            host_ip, _, rest = spec[1:].partition("]:")
            parts = [host_ip, *rest.split(":")]
        else:
            parts = spec.split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1]))
        elif len(parts) == 2:
            out.append(("", parts[0]))
        else:
            problems.append(
                f"{name}: port {port!r} publishes a random host port on every interface; "
                f"use \"{LOOPBACK}:HOST:CONTAINER\""
            )
    return out


def healthcheck_test(service: dict) -> str | None:
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return None
    test = check.get("test")
    if test is None:
        return None
    if isinstance(test, list):
        if test and test[0] == "NONE":
            return None
        return " ".join(str(part) for part in test)
    return str(test)


def url_hosts(url: str) -> list[str]:
    """Hosts of `scheme://host:port[,host:port][/path]`."""
    rest = url.split("://", 1)[1]
    authority = rest.split("/", 1)[0]
    hosts = []
    for entry in authority.split(","):
        entry = entry.rsplit("@", 1)[-1]
        hosts.append(entry.rsplit(":", 1)[0] if ":" in entry else entry)
    return hosts


def check(document: Any, known_config_keys: set[str] | None) -> tuple[list[str], int]:
    """Returns (problems, number of services)."""
    problems: list[str] = []
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict) or not document["services"]:
        return ["the file has no `services` mapping"], 0
    services: dict[str, dict] = document["services"]

    # Names a URL host may use: service names, hostnames and network aliases.
    reachable = set(services)
    for service in services.values():
        if service.get("hostname"):
            reachable.add(str(service["hostname"]))
        networks = service.get("networks")
        if isinstance(networks, dict):
            for net in networks.values():
                reachable.update((net or {}).get("aliases") or [])

    one_shot = {dep for s in services.values() for dep, cond in depends_on(s).items() if cond == "service_completed_successfully"}
    host_ports: dict[tuple[str, str], str] = {}
    deployed: dict[str, int] = {role: 0 for role in ROLES}

    for name, service in services.items():
        if not isinstance(service, dict):
            problems.append(f"{name}: service definition is not a mapping")
            continue
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: has neither `image` nor `build`")
        if service.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host bypasses the loopback-only port rule")

        for dep, condition in depends_on(service).items():
            if dep not in services:
                problems.append(f"{name}: depends_on names `{dep}`, which is not a service")
                continue
            if condition not in CONDITIONS:
                problems.append(f"{name}: depends_on `{dep}` has unknown condition `{condition}`")
            if condition == "service_healthy" and healthcheck_test(services[dep]) is None:
                problems.append(f"{name}: waits for `{dep}` to be healthy, but `{dep}` has no healthcheck")

        for host_ip, host_port in published_ports(name, service, problems):
            if host_ip != LOOPBACK:
                where = host_ip or "every interface"
                problems.append(f"{name}: port {host_port} is published on {where}; bind it to {LOOPBACK}")
            previous = host_ports.setdefault((host_ip, host_port), name)
            if previous != name:
                problems.append(f"{name}: host port {host_ip}:{host_port} is also published by {previous}")

        if name in one_shot:
            if str(service.get("restart", "no")) not in ("no", "on-failure"):
                problems.append(f"{name}: is a one-shot job (others wait for it to complete) but restarts `{service.get('restart')}`")
        elif healthcheck_test(service) is None:
            problems.append(f"{name}: long-running service without a healthcheck")

        if not is_switchyard(service):
            continue
        command = as_command(service.get("command"))
        role = " ".join(command)
        if role not in ROLES:
            problems.append(f"{name}: command {command!r} is not a Switchyard role (known: {', '.join(ROLES)})")
        else:
            deployed[role] += replicas(service)
        env = as_env(service.get("environment"))
        for var, schemes in REQUIRED_ENV.items():
            value = env.get(var)
            if not value:
                problems.append(f"{name}: missing environment variable {var}")
            elif not value.startswith(schemes):
                problems.append(f"{name}: {var}={value} must start with {' or '.join(schemes)}")
            else:
                for host in url_hosts(value):
                    if host not in reachable:
                        problems.append(f"{name}: {var} names host `{host}`, which is no service of this file")
        if known_config_keys is not None:
            for var in env:
                if var.startswith(ENV_PREFIX):
                    key = ".".join(part.lower() for part in var[len(ENV_PREFIX):].split("__"))
                    if key not in known_config_keys:
                        problems.append(f"{name}: {var} sets `{key}`, which is not a key of crates/config/default.toml")
        test = healthcheck_test(service)
        if test is not None and "/readyz" not in test:
            problems.append(f"{name}: the healthcheck should request /readyz, not `{test}`")

    for role, count in deployed.items():
        if count == 0:
            problems.append(f"no service runs the Switchyard role `{role}`")
    if 0 < deployed["ingress"] < MIN_INGRESS_REPLICAS:
        problems.append(f"ingress runs {deployed['ingress']} replica(s); at least {MIN_INGRESS_REPLICAS} are required")
    return problems, len(services)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass


def main(argv: list[str]) -> int:
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        sys.stderr.write(__doc__ or "")
        return 2
    path = Path(argv[1]) if len(argv) == 2 else DEFAULT_COMPOSE
    try:
        document = load(path)
    except OSError as error:
        print(f"compose-check: cannot read {path}: {error}", file=sys.stderr)
        return 1
    except yaml.YAMLError as error:
        print(f"compose-check: {path} is not valid YAML: {error}", file=sys.stderr)
        return 1
    problems, count = check(document, config_keys(DEFAULT_CONFIG))
    if problems:
        for problem in problems:
            print(f"compose-check: {path.name}: {problem}", file=sys.stderr)
        print(f"compose-check: {len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"compose-check: {count} services OK")
    return 0


def self_test() -> int:
    """Breaks a valid file one rule at a time and checks each break is reported."""
    good = load(DEFAULT_COMPOSE)
    keys = config_keys(DEFAULT_CONFIG)
    problems, _ = check(good, keys)
    if problems:
        print("compose-check self-test: the real compose file must pass first:", *problems, sep="\n  ", file=sys.stderr)
        return 1

    def broken(mutate) -> list[str]:
        document = load(DEFAULT_COMPOSE)
        mutate(document["services"])
        return check(document, keys)[0]

    cases = {
        "no image": (lambda s: s["scylla"].pop("image"), "neither `image` nor `build`"),
        "unknown dependency": (lambda s: s["projector"]["depends_on"].update({"kafak": {"condition": "service_started"}}), "`kafak`, which is not a service"),
        "public port": (lambda s: s["scylla"].update(ports=["9042:9042"]), "every interface"),
        "random port": (lambda s: s["scylla"].update(ports=["9042"]), "random host port"),
        "unknown role": (lambda s: s["projector"].update(command=["stream", "nps"]), "not a Switchyard role"),
        "missing env": (lambda s: s["sink"]["environment"].pop("SWITCHYARD__STORE__URL"), "missing environment variable SWITCHYARD__STORE__URL"),
        "wrong scheme": (lambda s: s["sink"]["environment"].update(SWITCHYARD__LOG__URL="embedded"), "must start with kafka://"),
        "unknown host": (lambda s: s["sink"]["environment"].update(SWITCHYARD__LOG__URL="kafka://kafka:9092"), "host `kafka`"),
        "unknown config key": (lambda s: s["sink"]["environment"].update(SWITCHYARD__SERVER__LISEN="x"), "`server.lisen`"),
        "no healthcheck": (lambda s: s["schema-registry"].pop("healthcheck"), "no healthcheck"),
        "missing role": (lambda s: s.pop("stream-judge"), "role `stream judge`"),
        "one ingress": (lambda s: s.pop("ingress-2"), "at least 2"),
    }
    failed = 0
    for label, (mutate, expected) in cases.items():
        found = broken(mutate)
        if not any(expected in problem for problem in found):
            failed += 1
            print(f"compose-check self-test: `{label}` not reported (wanted {expected!r}); got: {found}", file=sys.stderr)
    try:
        yaml.load("a: 1\na: 2\n", Loader=UniqueKeyLoader)  # noqa: S506
        failed += 1
        print("compose-check self-test: duplicate keys not rejected", file=sys.stderr)
    except yaml.YAMLError:
        pass
    total = len(cases) + 1
    print(f"compose-check self-test: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
