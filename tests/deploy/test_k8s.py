"""deploy/k8s: every overlay renders, is valid Kubernetes, and matches what Herald serves and reads.

The overlays are built with `kubectl kustomize` when it is installed (else with the loader in
tests/deploy/kustomize.py), every object is validated with kubernetes-validate (strict: unknown
fields fail), and the probes, ports, env var names, role flags, commands and shutdown budget are
checked against the code: the settings class, the app's routes, the click commands and the
Dockerfile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from herald.config import Settings
from tests.deploy import kustomize
from tests.deploy.kustomize import Obj, pod_spec
from tests.deploy.support import (
    HTTP_SHUTDOWN_SECONDS,
    ROOT,
    STOP_MARGIN_SECONDS,
    cli_commands,
    default,
    image_user,
    route_paths,
    setting_names,
    settings_from_env,
    unknown_settings,
)

K8S = ROOT / "deploy" / "k8s"
SECRET_TEMPLATE = K8S / "base" / "secret.example.yaml"
OVERLAYS = ("unified", "split")
# The oldest Kubernetes minor still widely run, and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

# (ENABLE_API, ENABLE_WORKERS) of every Deployment each overlay must have.
EXPECTED_ROLES = {
    "unified": {"herald": (True, True)},
    "split": {"herald": (True, False), "herald-worker": (False, True)},
}


@dataclass
class Rendered:
    name: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    @property
    def deployments(self) -> list[Obj]:
        return self.of_kind("Deployment")

    @property
    def workloads(self) -> list[Obj]:
        return [obj for obj in self.objects if pod_spec(obj) is not None]


def secret_template() -> Obj:
    docs = [doc for doc in yaml.safe_load_all(SECRET_TEMPLATE.read_text()) if doc]
    assert len(docs) == 1
    return docs[0]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return Rendered(request.param, kustomize.render(K8S / "overlays" / request.param))


def main_container(obj: Obj) -> Obj:
    spec = pod_spec(obj)
    assert spec is not None
    assert len(spec["containers"]) == 1, f"{obj['metadata']['name']}: one container expected"
    container: Obj = spec["containers"][0]
    return container


def container_env(rendered: Rendered, container: Obj) -> dict[str, str]:
    """The environment Kubernetes gives the container: envFrom in order, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "prefix" not in source, "envFrom prefixes would rename Herald's settings"
        if "configMapRef" in source:
            env.update(rendered.get("ConfigMap", source["configMapRef"]["name"])["data"])
        elif "secretRef" in source:
            secret = secret_template()
            assert source["secretRef"]["name"] == secret["metadata"]["name"], (
                f"secretRef {source['secretRef']['name']} is not the template's Secret"
            )
            env.update(secret["stringData"])
        else:
            pytest.fail(f"unexpected envFrom source {source}")
    for item in container.get("env", []):
        assert "value" in item, f"env {item['name']}: only literal values are checked here"
        env[item["name"]] = item["value"]
    return env


def effective_settings(rendered: Rendered, obj: Obj) -> Settings:
    return settings_from_env(container_env(rendered, main_container(obj)))


def effective_port(rendered: Rendered, obj: Obj) -> int:
    env = container_env(rendered, main_container(obj))
    return int(env.get("PORT", default("PORT")))


def resolve_port(container: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert named, f"no container port named {port!r}"
    return int(named[0])


def selects(selector: dict[str, str], obj: Obj) -> bool:
    labels = obj["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def pre_stop_seconds(container: Obj) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep", f"unexpected preStop {command}"
    assert len(command) == 2, f"unexpected preStop {command}"
    return float(command[1])


def name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


# -- rendering and schema validation ----------------------------------------------------------


def test_every_object_is_valid_kubernetes(rendered: Rendered) -> None:
    assert rendered.objects
    for obj in [*rendered.objects, secret_template()]:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{rendered.name}: {name(obj)} invalid for {version}: {exc.message}")


def test_overlay_has_the_expected_objects(rendered: Rendered) -> None:
    kinds = {obj["kind"] for obj in rendered.objects}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Job"} <= kinds
    assert "Secret" not in kinds, "apply -k must never overwrite real credentials"
    assert {d["metadata"]["name"] for d in rendered.deployments} == set(
        EXPECTED_ROLES[rendered.name]
    )
    if rendered.name == "split":
        assert "HorizontalPodAutoscaler" in kinds


@pytest.mark.skipif(kustomize.kubectl() is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_python_loader_agrees_with_kubectl(overlay: str) -> None:
    """Where kubectl is missing the loader renders instead: it must render the same."""
    directory = K8S / "overlays" / overlay
    by_kubectl = {kustomize.object_id(o): o for o in kustomize.kubectl_kustomize(directory)}
    by_loader = {kustomize.object_id(o): o for o in kustomize.load(directory)}
    assert by_loader.keys() == by_kubectl.keys()
    for key, obj in by_kubectl.items():
        assert by_loader[key] == obj, f"{overlay}: {key} differs"


def test_loader_strategic_merge() -> None:
    base = {
        "spec": {
            "replicas": 2,
            "containers": [
                {"name": "a", "args": ["x"], "env": [{"name": "A", "value": "1"}]},
                {"name": "b"},
            ],
        }
    }
    patch = {
        "spec": {
            "replicas": None,
            "containers": [
                {
                    "name": "a",
                    "args": ["y"],
                    "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
                }
            ],
        }
    }
    assert kustomize.merge(base, patch) == {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "args": ["y"],
                    "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
                },
                {"name": "b"},
            ]
        }
    }
    assert base["spec"]["replicas"] == 2  # the inputs are not changed


def test_loader_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(kustomize.UnsupportedKustomization):
        kustomize.load(tmp_path)


# -- settings: every name is real, every combination loads ------------------------------------


def test_config_and_secret_keys_are_settings(rendered: Rendered) -> None:
    for config_map in rendered.of_kind("ConfigMap"):
        assert not unknown_settings(set(config_map["data"])), name(config_map)
    secret = secret_template()
    assert not unknown_settings(set(secret["stringData"]))
    assert {"DATABASE_URL", "REDIS_URL"} <= set(secret["stringData"]), "connections are secret"
    assert "DATABASE_URL" not in rendered.get("ConfigMap", "herald-config")["data"]


def test_secret_template_lives_with_the_pods(rendered: Rendered) -> None:
    namespaces = {obj["metadata"].get("namespace") for obj in rendered.objects}
    assert namespaces == {secret_template()["metadata"].get("namespace")}


def test_container_env_names_are_settings(rendered: Rendered) -> None:
    for obj in rendered.workloads:
        env = container_env(rendered, main_container(obj))
        assert not unknown_settings(set(env)), f"{name(obj)}: {unknown_settings(set(env))}"
        assert env.keys() <= setting_names()


def test_secret_template_placeholders_are_marked_and_load() -> None:
    secret = secret_template()
    values = secret["stringData"]
    assert "CHANGE-ME" in values["DATABASE_URL"]
    assert "CHANGE-ME" in SECRET_TEMPLATE.read_text().split("apiVersion")[0], "say it is a template"
    settings_from_env(values)  # the placeholders still have the shapes Settings accepts


def test_deployment_roles_and_settings_load(rendered: Rendered) -> None:
    migrates = any(
        main_container(job).get("args") == ["migrate"] for job in rendered.of_kind("Job")
    )
    for deployment in rendered.deployments:
        settings = effective_settings(rendered, deployment)
        roles = (settings.enable_api, settings.enable_workers)
        assert roles == EXPECTED_ROLES[rendered.name][deployment["metadata"]["name"]], name(
            deployment
        )
        if migrates:
            assert settings.auto_migrate is False, f"{name(deployment)}: the Job migrates"
        assert settings.host == "0.0.0.0", f"{name(deployment)} must listen on all interfaces"
        assert settings.log_format.value == "json"


# -- probes, ports, commands ------------------------------------------------------------------


def test_probes_hit_real_routes_on_the_container_port(rendered: Rendered) -> None:
    for deployment in rendered.deployments:
        container = main_container(deployment)
        settings = effective_settings(rendered, deployment)
        routes = route_paths(settings)
        port = effective_port(rendered, deployment)
        grpc = settings.enable_api and settings.enable_grpc
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        if grpc:  # gRPC's health service: NOT_SERVING exactly when /health/ready is 503
            assert container["readinessProbe"]["grpc"] == {"port": settings.grpc_port}
        else:
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe not in container or "httpGet" not in container[probe]:
                continue
            http_get = container[probe]["httpGet"]
            assert http_get["path"] in routes, f"{name(deployment)} {probe}: no such route"
            assert resolve_port(container, http_get["port"]) == port, f"{probe} port"
        ports = [port, settings.grpc_port] if grpc else [port]
        assert [p["containerPort"] for p in container["ports"]] == ports


def test_prometheus_scrapes_the_metrics_route(rendered: Rendered) -> None:
    for deployment in rendered.deployments:
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == effective_port(rendered, deployment)
        settings = effective_settings(rendered, deployment)
        assert annotations["prometheus.io/path"] in route_paths(settings)


def test_containers_run_real_herald_commands(rendered: Rendered) -> None:
    images = set()
    for obj in rendered.workloads:
        container = main_container(obj)
        assert "command" not in container, "keep the image's ENTRYPOINT (herald)"
        assert container["args"][0] in cli_commands(), f"{name(obj)}: {container['args']}"
        expected = "migrate" if obj["kind"] == "Job" else "serve"
        assert container["args"] == [expected]
        images.add(container["image"])
    assert len(images) == 1, f"one image for every role, got {images}"


def test_migration_job(rendered: Rendered) -> None:
    (job,) = rendered.of_kind("Job")
    spec = pod_spec(job)
    assert spec is not None
    assert spec["restartPolicy"] in {"OnFailure", "Never"}
    assert job["spec"]["backoffLimit"] >= 1
    settings = effective_settings(rendered, job)
    assert settings.database_url


def test_service_routes_to_api_pods_only(rendered: Rendered) -> None:
    (service,) = rendered.of_kind("Service")
    selector = service["spec"]["selector"]
    for deployment in rendered.deployments:
        serves_api = effective_settings(rendered, deployment).enable_api
        assert selects(selector, deployment) == serves_api, name(deployment)
        if serves_api:
            container = main_container(deployment)
            settings = effective_settings(rendered, deployment)
            served = {effective_port(rendered, deployment)}
            if settings.enable_grpc:
                served.add(settings.grpc_port)
            targets = {resolve_port(container, p["targetPort"]) for p in service["spec"]["ports"]}
            assert targets == served


def test_every_deployment_has_exactly_one_pdb(rendered: Rendered) -> None:
    pdbs = rendered.of_kind("PodDisruptionBudget")
    for deployment in rendered.deployments:
        matching = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"], deployment)]
        assert len(matching) == 1, f"{name(deployment)}: {len(matching)} PDBs"
    for pdb in pdbs:
        assert sum(selects(pdb["spec"]["selector"]["matchLabels"], d) for d in rendered.deployments)


# -- shutdown, resources, security ------------------------------------------------------------


def test_termination_grace_covers_the_drain(rendered: Rendered) -> None:
    for deployment in rendered.deployments:
        container = main_container(deployment)
        grace = effective_settings(rendered, deployment).shutdown_grace_seconds
        budget = grace + pre_stop_seconds(container) + HTTP_SHUTDOWN_SECONDS + STOP_MARGIN_SECONDS
        period = pod_spec(deployment)["terminationGracePeriodSeconds"]  # type: ignore[index]
        assert period >= budget, f"{name(deployment)}: {period}s < {budget}s needed"


def test_api_pods_pause_before_sigterm(rendered: Rendered) -> None:
    """Endpoints take a moment to drop a terminating pod: API pods keep serving meanwhile."""
    for deployment in rendered.deployments:
        if effective_settings(rendered, deployment).enable_api:
            assert pre_stop_seconds(main_container(deployment)) >= 3, name(deployment)


def test_resources_have_requests_and_limits(rendered: Rendered) -> None:
    for obj in rendered.workloads:
        resources = main_container(obj)["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), f"{name(obj)} {kind}"


def test_pods_run_as_the_image_user(rendered: Rendered) -> None:
    uid = image_user().split(":")[0]
    assert uid.isdigit(), "a numeric USER lets runAsNonRoot be verified"
    for obj in rendered.workloads:
        spec = pod_spec(obj)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert str(spec["securityContext"]["runAsUser"]) == uid, name(obj)
        security = main_container(obj)["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]


# -- split: the API on an HPA, workers on their own --------------------------------------------


def test_split_scales_api_on_cpu_and_workers_on_their_own() -> None:
    rendered = Rendered("split", kustomize.render(K8S / "overlays" / "split"))
    (hpa,) = rendered.of_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment"
    api = rendered.get("Deployment", target["name"])
    settings = effective_settings(rendered, api)
    assert settings.enable_api
    assert not settings.enable_workers
    assert "replicas" not in api["spec"], "the HPA owns the API's replica count"
    assert "cpu" in main_container(api)["resources"]["requests"], "CPU utilisation needs requests"
    metrics = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert "cpu" in metrics
    assert hpa["spec"]["minReplicas"] >= 2
    workers = [d for d in rendered.deployments if not effective_settings(rendered, d).enable_api]
    assert workers
    for worker in workers:
        assert worker["metadata"]["name"] != target["name"]
        assert worker["spec"]["replicas"] >= 1


def test_split_worker_pods_match_the_api_pods() -> None:
    """The worker Deployment is a copy: what must not drift between the two is compared."""
    rendered = Rendered("split", kustomize.render(K8S / "overlays" / "split"))
    api, worker = rendered.get("Deployment", "herald"), rendered.get("Deployment", "herald-worker")
    for key in ("securityContext", "terminationGracePeriodSeconds", "volumes"):
        assert pod_spec(api)[key] == pod_spec(worker)[key], key  # type: ignore[index]
    same = ("image", "args", "envFrom", "securityContext", "volumeMounts")
    probes = ("livenessProbe", "startupProbe")
    for key in (*same, *probes):
        assert main_container(api).get(key) == main_container(worker).get(key), key
    # The worker serves no gRPC: its HTTP port only, and readiness over HTTP.
    http_port = [p for p in main_container(api)["ports"] if p["name"] == "http"]
    assert main_container(worker)["ports"] == http_port
    assert main_container(worker)["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert worker["spec"]["template"]["metadata"]["annotations"] == annotations


# -- Prometheus' Kubernetes discovery (deploy/prometheus) keeps these pods ---------------------


def _discovery_labels(deployment: Obj, container: Obj) -> dict[str, str]:
    """The __meta_kubernetes_* labels Prometheus' pod discovery gives a running pod."""
    template = deployment["spec"]["template"]["metadata"]
    meta = {
        "__meta_kubernetes_namespace": deployment["metadata"].get("namespace", "default"),
        "__meta_kubernetes_pod_container_name": container["name"],
        "__meta_kubernetes_pod_container_init": "false",
        "__meta_kubernetes_pod_phase": "Running",
    }
    for kind, values in (("label", template["labels"]), ("annotation", template["annotations"])):
        for key, value in values.items():
            meta[f"__meta_kubernetes_pod_{kind}_{re.sub(r'[^a-zA-Z0-9_]', '_', key)}"] = value
    return meta


def test_prometheus_kubernetes_discovery_keeps_herald_pods(rendered: Rendered) -> None:
    path = ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml"
    if not path.exists():
        pytest.skip("no deploy/prometheus/prometheus-kubernetes.yml")
    config = yaml.safe_load(path.read_text())
    jobs = [job for job in config["scrape_configs"] if "kubernetes_sd_configs" in job]
    assert jobs
    for job in jobs:
        for deployment in rendered.deployments:
            meta = _discovery_labels(deployment, main_container(deployment))
            for sd in job["kubernetes_sd_configs"]:
                names = sd.get("namespaces", {}).get("names")
                assert names is None or meta["__meta_kubernetes_namespace"] in names
            for rule in job.get("relabel_configs", []):
                if rule.get("action") not in {"keep", "drop"}:
                    continue
                separator = rule.get("separator", ";")
                value = separator.join(meta.get(label, "") for label in rule["source_labels"])
                matched = re.fullmatch(rule.get("regex", "(.*)"), value) is not None
                assert matched == (rule["action"] == "keep"), (
                    f"{job['job_name']} drops {name(deployment)}: {rule}"
                )


# -- the probe paths really answer, in each Deployment's configuration --------------------------


async def _probe_statuses(settings: Settings, paths: list[str]) -> dict[str, int]:
    from herald.app import create_app

    app = create_app(settings)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald") as client:
            return {path: (await client.get(path)).status_code for path in paths}


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_probe_paths_answer_200_in_each_role(overlay: str) -> None:
    from tests.conftest import DATABASE_URL, REDIS_URL

    rendered = Rendered(overlay, kustomize.render(K8S / "overlays" / overlay))
    for deployment in rendered.deployments:
        container = main_container(deployment)
        env = container_env(rendered, container)
        env.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, SHUTDOWN_GRACE_SECONDS="1")
        settings = settings_from_env(env)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        paths = [
            container[probe]["httpGet"]["path"]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
            if probe in container and "httpGet" in container[probe]
        ]
        paths.append(annotations["prometheus.io/path"])
        statuses = await _probe_statuses(settings, paths)
        assert statuses == dict.fromkeys(paths, 200), f"{overlay} {name(deployment)}: {statuses}"
