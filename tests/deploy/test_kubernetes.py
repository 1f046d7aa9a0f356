"""The kustomize base and overlays, rendered: valid Kubernetes and Dapr objects that fit together.

Every object is checked against the Kubernetes API schemas (strict: unknown fields fail) for the oldest and
newest supported Kubernetes, every Dapr resource against what daprd accepts, and then the wiring: the pod
runs beside daprd on the app channel, probes and the Service reach the public API only, Secrets, RBAC,
component scopes, topics and autoscaling point at what exists.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from api.channel.app import REMINDERS_TOPIC, TASK_EVENTS_TOPIC
from api.channel.dead_letters import dead_letter_topic
from api.channel.deliveries import DEAD_LETTERED
from api.process.settings import ENV_NAMES, load_settings
from tests.deploy.dapr_fields import ANNOTATIONS
from tests.deploy.dapr_resources import problems
from tests.deploy.rendering import REPO, by_kind, k8s_problems, one

Docs = list[dict[str, Any]]
APP_ID = "todo-engine"
# the app's topics and the dead-letter topics daprd publishes to (and the app subscribes to)
TOPICS = {TASK_EVENTS_TOPIC, REMINDERS_TOPIC, *map(dead_letter_topic, DEAD_LETTERED)}


def _dapr(docs: Docs) -> Docs:
    return [d for d in docs if str(d["apiVersion"]).startswith("dapr.io/")]


def _app(docs: Docs) -> dict[str, Any]:
    return one(docs, "Deployment", APP_ID)


def _pod(docs: Docs) -> dict[str, Any]:
    pod: dict[str, Any] = _app(docs)["spec"]["template"]
    return pod


def _container(docs: Docs) -> dict[str, Any]:
    (container,) = [c for c in _pod(docs)["spec"]["containers"] if c["name"] == "app"]
    return dict(container)


def _env(docs: Docs) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(docs)["env"]}


def _component(docs: Docs, name: str) -> dict[str, Any]:
    return one(docs, "Component", name)


def _metadata(component: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in component["spec"]["metadata"]}


def test_every_kubernetes_object_validates_strictly(
    kustomized: tuple[str, Docs], k8s_versions: list[str]
) -> None:
    name, docs = kustomized
    found = [p for d in docs if d not in _dapr(docs) for v in k8s_versions for p in k8s_problems(d, v)]
    assert found == [], f"{name}: " + "\n".join(found)


def test_every_dapr_resource_is_one_daprd_accepts(kustomized: tuple[str, Docs]) -> None:
    name, docs = kustomized
    kinds = sorted(d["kind"] for d in _dapr(docs))
    assert kinds == ["Component", "Component", "Component", "Configuration", "Resiliency"], name
    assert [p for d in _dapr(docs) for p in problems(d)] == []


def test_everything_lives_in_one_namespace(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    (namespace,) = by_kind(docs, "Namespace")
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }


def test_the_pod_runs_beside_daprd_which_calls_the_app_channel(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    notes = _pod(docs)["metadata"]["annotations"]
    env = _env(docs)
    assert {k for k in notes if k.startswith("dapr.io/")} <= ANNOTATIONS
    assert notes["dapr.io/enabled"] == "true"
    assert notes["dapr.io/app-id"] == APP_ID == env["APP_ID"]["value"]
    assert notes["dapr.io/app-port"] == env["TODO_CHANNEL_PORT"]["value"] == "8001"
    assert notes["dapr.io/app-channel-address"] == "127.0.0.1"
    one(docs, "Configuration", notes["dapr.io/config"])
    # daprd gets the token Secrets from the injector; the app container reads the same ones.
    for note, variable in (
        ("dapr.io/app-token-secret", "APP_API_TOKEN"),
        ("dapr.io/api-token-secret", "DAPR_API_TOKEN"),
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": notes[note], "key": "token"}
    assert notes["dapr.io/disable-builtin-k8s-secret-store"] == "true"


def test_the_app_accepts_its_environment(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    env = _env(docs)
    assert set(env) <= set(ENV_NAMES), set(env) - set(ENV_NAMES)
    values = {name: e.get("value", "a-secret-value-" + "x" * 40) for name, e in env.items()}
    settings = load_settings(values)
    assert (settings.host, settings.port, settings.channel_port) == ("0.0.0.0", 8000, 8001)
    assert settings.channel_host == "127.0.0.1"
    assert _component(docs, settings.state_store)["spec"]["type"].startswith("state.")
    assert _component(docs, settings.pubsub)["spec"]["type"].startswith("pubsub.")
    assert settings.jwt_secret_store is not None
    assert _component(docs, settings.jwt_secret_store)["spec"]["type"] == "secretstores.kubernetes"


def test_probes_and_the_service_reach_the_public_api_only(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    container = _container(docs)
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe, path in (
        ("startupProbe", "/health/live"),
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    service = one(docs, "Service", APP_ID)
    pod_labels = _pod(docs)["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_every_container_has_requests_limits_and_no_privileges(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    for deployment in by_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, (deployment["metadata"]["name"], bound)
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert _container(docs)["securityContext"]["readOnlyRootFilesystem"] is True


def test_autoscaling_and_disruption_budget_target_the_app(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    app = _app(docs)
    assert "replicas" not in app["spec"]  # the HPA owns the count; an apply must not reset it
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP_ID}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"] == app["spec"]["selector"]["matchLabels"]
    assert app["spec"]["selector"]["matchLabels"].items() <= _pod(docs)["metadata"]["labels"].items()
    assert pdb["maxUnavailable"] == 1


def test_the_pods_may_read_the_jwt_secret_and_nothing_else(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    jwt = _env(docs)["TODO_JWT_SECRET_KEY"]["value"]
    binding = one(docs, "RoleBinding")
    role = one(docs, "Role", binding["roleRef"]["name"])
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [jwt], "verbs": ["get"]}
    ]
    namespace = _app(docs)["metadata"]["namespace"]
    account = _pod(docs)["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    one(docs, "ServiceAccount", account)
    scopes = one(docs, "Configuration")["spec"]["secrets"]["scopes"]
    store = _env(docs)["TODO_JWT_SECRET_STORE"]["value"]
    assert scopes == [{"storeName": store, "defaultAccess": "deny", "allowedSecrets": [jwt]}]


def test_components_are_scoped_to_the_app_and_its_topics(kustomized: tuple[str, Docs]) -> None:
    name, docs = kustomized
    for component in by_kind(docs, "Component"):
        assert component["scopes"] == [APP_ID], component["metadata"]["name"]
    state = _component(docs, "statestore")
    assert (state["spec"]["type"], state["spec"]["version"]) == ("state.postgresql", "v2")
    meta = _metadata(state)
    assert meta["actorStateStore"]["value"] == "true"
    assert "secretKeyRef" in meta["connectionString"]
    pubsub = _component(docs, "pubsub")
    assert pubsub["spec"]["type"] == ("pubsub.kafka" if name == "prod" else "pubsub.redis")
    meta = _metadata(pubsub)
    assert set(meta["allowedTopics"]["value"].split(",")) == TOPICS
    for scope in ("publishingScopes", "subscriptionScopes"):
        app, _, topics = meta[scope]["value"].partition("=")
        assert app == APP_ID and set(topics.split(",")) == TOPICS


def test_configuration_and_resiliency_match_the_local_ones(kustomized: tuple[str, Docs]) -> None:
    _, docs = kustomized
    local = yaml.safe_load((REPO / "dapr" / "resiliency.yaml").read_text(encoding="utf-8"))
    resiliency = one(docs, "Resiliency")
    assert resiliency["spec"] == local["spec"] and resiliency["scopes"] == local["scopes"] == [APP_ID]
    config = one(docs, "Configuration")["spec"]
    local_config = yaml.safe_load((REPO / "dapr" / "config.yaml").read_text(encoding="utf-8"))["spec"]
    assert config["workflow"] == local_config["workflow"]
    assert config["metric"] == local_config["metric"]
    (policy,) = config["accessControl"]["policies"]
    assert (policy["appId"], policy["namespace"]) == (APP_ID, _app(docs)["metadata"]["namespace"])


def _secret_refs(docs: Docs) -> set[tuple[str, str]]:
    """(Secret, key) pairs the pods and the components read."""
    notes = _pod(docs)["metadata"]["annotations"]
    refs = {(notes["dapr.io/app-token-secret"], "token"), (notes["dapr.io/api-token-secret"], "token")}
    jwt = _env(docs)["TODO_JWT_SECRET_KEY"]["value"]
    refs.add((jwt, jwt))  # the app asks the secret store for secret `jwt`, key `jwt`
    for deployment in by_kind(docs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for e in container.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    for component in by_kind(docs, "Component"):
        for item in component["spec"]["metadata"]:
            if "secretKeyRef" in item:
                refs.add((item["secretKeyRef"]["name"], item["secretKeyRef"]["key"]))
    return refs


def test_the_dev_overlay_creates_every_secret_it_reads(dev: Docs) -> None:
    secrets = {s["metadata"]["name"]: s["data"] for s in by_kind(dev, "Secret")}
    for name, key in sorted(_secret_refs(dev)):
        assert key in secrets.get(name, {}), f"Secret {name} with key {key} is read but not created"
    decoded = {n: {k: base64.b64decode(v).decode() for k, v in d.items()} for n, d in secrets.items()}
    tokens = {"APP_API_TOKEN": decoded["todo-engine-app-token"]["token"]}
    settings = load_settings({**tokens, "TODO_JWT_SECRET": decoded["todo-engine-jwt"]["todo-engine-jwt"]})
    assert settings.jwt_secret is not None  # long enough for the app's checks


def test_the_prod_overlay_keeps_secrets_out_of_the_repository(prod: Docs) -> None:
    assert by_kind(prod, "Secret") == []
    documented = (REPO / "deployments" / "README.md").read_text(encoding="utf-8")
    for name, _ in _secret_refs(prod):
        assert f"secret generic {name} " in documented, f"deployments/README.md does not create {name}"
    assert one(prod, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3
