"""The Kubernetes manifests (deploy/kubernetes, docs/kubernetes.md): valid for Kubernetes 1.30 in
strict mode, KEDA objects within KEDA's documented fields, and the rules the platform depends on.

No cluster runs here: these tests prove the manifests, not a deployment (docs/kubernetes.md says so).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import kubernetes_validate
import pytest
from django.urls import resolve

from config import health
from media_pipeline.metrics import WORK_METRIC

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
sys.path.insert(0, str(ROOT / "scripts"))
from render_manifests import dump, render, render_with_kubectl  # noqa: E402

KUBERNETES_VERSION = "1.30.0"
DIRECTORIES = ["base", "migrate", "overlays/production", "overlays/production/migrate"]
SECRET_MOUNT = "/run/secrets/lessons"

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    """What an operator applies: the migration Job's overlay and the production overlay."""
    return render(KUBE / "overlays/production/migrate") + render(KUBE / "overlays/production")


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for manifest in manifests:
        spec = manifest.get("spec", {})
        if manifest["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            yield f"{manifest['kind']}/{manifest['metadata']['name']}", spec["template"]["spec"]


def containers(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for name, pod in pod_specs(manifests):
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield f"{name}/{container['name']}", container


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_our_renderer_gives_what_kubectl_kustomize_gives(directory: str) -> None:
    # The one check that needs kubectl, which the Makefile cannot install (Debian 12 ships kubectl 1.20,
    # without this kustomize); every other test here validates the same objects without it.
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: `make manifests` uses scripts/render_manifests.py here")
    ours, kubectls = render(KUBE / directory), render_with_kubectl(KUBE / directory)
    assert ours == kubectls
    assert dump(ours) == dump(kubectls)  # `make manifests` prints the same text either way


def test_the_image_is_named_once_and_the_overlay_replaces_it(production: list[Manifest]) -> None:
    assert {c["image"] for _, c in containers(render(KUBE / "base") + render(KUBE / "migrate"))} == {"lessons:latest"}
    assert {c["image"] for _, c in containers(production)} == {"registry.example.org/lessons:1.0.0"}
    assert {m["metadata"].get("namespace") for m in production} == {"lessons"}


def test_every_manifest_is_valid_for_kubernetes_1_30_in_strict_mode(production: list[Manifest]) -> None:
    checked = 0
    for manifest in production:
        if manifest["apiVersion"].startswith("keda.sh/"):
            continue  # no schema is bundled for KEDA: test_scaled_objects_use_only_kedas_fields
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked == len(production) - 4


# KEDA publishes no JSON schema that kubernetes-validate could load: these are the fields of the
# ScaledObject specification, https://keda.sh/docs/2.15/reference/scaledobject-spec/ (KEDA 2.15), and
# of the Prometheus trigger, https://keda.sh/docs/2.15/scalers/prometheus/.
KEDA_SPEC = {
    "scaleTargetRef": {"apiVersion", "kind", "name", "envSourceContainerName"},
    "pollingInterval": None,
    "cooldownPeriod": None,
    "initialCooldownPeriod": None,
    "idleReplicaCount": None,
    "minReplicaCount": None,
    "maxReplicaCount": None,
    "fallback": {"failureThreshold", "replicas"},
    "advanced": {"restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"},
    "triggers": None,
}
KEDA_HPA_CONFIG = {"name", "behavior"}
KEDA_TRIGGER = {"type", "metadata", "name", "useCachedMetrics", "authenticationRef", "metricType"}
KEDA_PROMETHEUS = {
    "serverAddress", "query", "queryParameters", "threshold", "activationThreshold", "namespace",
    "customHeaders", "ignoreNullValues", "unsafeSsl", "authModes",
}  # fmt: skip
KEDA_PROMETHEUS_REQUIRED = {"serverAddress", "query", "threshold"}


def test_scaled_objects_use_only_kedas_fields(production: list[Manifest]) -> None:
    scaled = of_kind(production, "ScaledObject")
    assert scaled
    for name, manifest in scaled.items():
        assert manifest["apiVersion"] == "keda.sh/v1alpha1"
        assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
        spec = manifest["spec"]
        assert set(spec) <= set(KEDA_SPEC), name
        for field, allowed in KEDA_SPEC.items():
            if allowed is not None and field in spec:
                assert set(spec[field]) <= allowed, (name, field)
        assert "name" in spec["scaleTargetRef"]
        assert set(spec["fallback"]) == {"failureThreshold", "replicas"}  # both mandatory with fallback
        hpa_config = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        assert set(hpa_config) <= KEDA_HPA_CONFIG
        if "behavior" in hpa_config:  # passed to the HPA as it is: it must be a valid HPA behavior
            hpa = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "maxReplicas": spec["maxReplicaCount"],
                    "behavior": hpa_config["behavior"],
                },
            }
            kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)
        for number in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
            assert isinstance(spec[number], int), (name, number)
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        for trigger in spec["triggers"]:
            assert set(trigger) <= KEDA_TRIGGER, name
            assert trigger["type"] == "prometheus"
            # Fallback works only with AverageValue, the trigger's default metric type.
            assert trigger.get("metricType", "AverageValue") == "AverageValue"
            metadata = trigger["metadata"]
            assert KEDA_PROMETHEUS_REQUIRED <= set(metadata) <= KEDA_PROMETHEUS, name
            # Trigger metadata is a map of strings in KEDA's CRD: a bare number or boolean is refused.
            assert all(isinstance(value, str) for value in metadata.values()), name
            float(metadata["threshold"])


def declared_queues() -> set[str]:
    broker = dramatiq.get_broker()
    return {broker.get_actor(name).queue_name for name in broker.get_declared_actors()}


def test_every_queue_in_the_code_has_a_worker_deployment_and_a_scaled_object(production: list[Manifest]) -> None:
    deployments, scaled = of_kind(production, "Deployment"), of_kind(production, "ScaledObject")
    queues = declared_queues()
    assert "quick" in queues and len(queues) >= 4  # read from the actors, so a new queue needs its worker here
    workers = {name for name in deployments if name.startswith("lessons-worker-")}
    assert workers == {f"lessons-worker-{queue}" for queue in queues}
    assert set(scaled) == workers
    for queue in queues:
        name = f"lessons-worker-{queue}"
        args = deployments[name]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:3] == ["worker", "--queues", queue] and args[3].startswith("--"), args  # this queue only
        assert "replicas" not in deployments[name]["spec"]  # KEDA owns the count; apply must not reset it
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"] == {"name": name}
        # What the trigger reads is the work of the queue: waiting + running + delayed messages
        # (tests/media_pipeline/test_queues.py shows the metric counts all three on the real Redis).
        (trigger,) = spec["triggers"]
        assert trigger["metadata"]["query"] == f'max({WORK_METRIC}{{queue="{queue}"}})'
        assert trigger["metadata"]["ignoreNullValues"] == "false"  # a lost metric is not a zero
        assert spec["fallback"]["replicas"] >= 1
        threads = int(args[args.index("--threads") + 1])
        assert float(trigger["metadata"]["threshold"]) == threads  # one message per worker thread
        env = {e["name"]: e.get("value") for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["dramatiq_queue_prefetch"] == str(threads)  # holds no message it cannot start
    assert scaled["lessons-worker-quick"]["spec"]["minReplicaCount"] >= 1


def test_grace_lets_a_stopping_worker_finish_its_message(production: list[Manifest]) -> None:
    for name, deployment in of_kind(production, "Deployment").items():
        if not name.startswith("lessons-worker-"):
            continue
        pod = deployment["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        shutdown_seconds = int(args[args.index("--worker-shutdown-timeout") + 1]) / 1000
        # Dramatiq waits this long for running messages, then puts back what it holds: before SIGKILL.
        assert shutdown_seconds + 30 <= pod["terminationGracePeriodSeconds"], name
    ladder = of_kind(production, "Deployment")["lessons-worker-ladder"]["spec"]["template"]["spec"]
    assert ladder["terminationGracePeriodSeconds"] >= 600  # a whole unchunked 10-minute source, see the YAML


def test_every_container_runs_locked_down(production: list[Manifest]) -> None:
    for name, pod in pod_specs(production):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        mounts = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            paths = {mount["mountPath"]: mounts[mount["name"]] for mount in container["volumeMounts"]}
            assert "emptyDir" in paths["/tmp"] and "emptyDir" in paths["/var/lib/lessons"], name
    for name, container in containers(production):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"]), name


def test_every_process_is_there(production: list[Manifest]) -> None:
    kinds = sorted(m["kind"] for m in production if m["kind"] in {"Deployment", "CronJob", "Job"})
    assert kinds == ["CronJob"] + ["Deployment"] * 8 + ["Job"]
    roles = {name: pod["containers"][0]["args"][0] for name, pod in pod_specs(production)}
    assert roles == {
        "Job/lessons-migrate": "migrate",
        "Deployment/lessons-web": "web",
        "Deployment/lessons-beacons": "beacons",
        **{f"Deployment/lessons-worker-{queue}": "worker" for queue in ("quick", "ladder", "replication", "lti")},
        "Deployment/lessons-qoe-drain": "qoe-drain",
        "Deployment/lessons-qoe-live": "qoe-live",
        "CronJob/lessons-pipeline-resume": "manage",
    }


def test_secrets_reach_the_pods_only_as_files(production: list[Manifest]) -> None:
    assert of_kind(production, "Secret") == {}  # created by the operator, never in the repository
    for name, container in containers(production):
        for source in container.get("envFrom", []):
            assert "secretRef" not in source, name
        for variable in container.get("env", []):
            assert "secretKeyRef" not in variable.get("valueFrom", {}), (name, variable)
            if variable["name"].endswith("_FILE"):
                key = variable["name"].removesuffix("_FILE")
                assert variable["value"] == f"{SECRET_MOUNT}/{key}", (name, variable)
        mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert SECRET_MOUNT in mounted, name
    for name, pod in pod_specs(production):
        (secret,) = [volume["secret"] for volume in pod["volumes"] if "secret" in volume]
        assert secret == {"secretName": "lessons-secrets", "defaultMode": 0o440}, name
    config = of_kind(production, "ConfigMap")["lessons-config"]["data"]
    secret_like = re.compile(r"SECRET|PASSWORD|PASSPHRASE|_KEY$|DATABASE_URL|REDIS_URL")
    assert [key for key in config if secret_like.search(key)] == []


def test_web_and_beacons_probe_health_and_leave_the_endpoints_before_sigterm(production: list[Manifest]) -> None:
    deployments = of_kind(production, "Deployment")
    assert resolve("/readyz").func is health.readyz and resolve("/healthz").func is health.healthz
    for name in ("lessons-web", "lessons-beacons"):
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        sleep = container["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "/bin/sleep" and int(sleep[1]) >= 10, name
        assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + 15, name
        assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    web = deployments["lessons-web"]["spec"]["template"]["spec"]["containers"][0]
    headers = {h["name"]: h["value"] for h in web["readinessProbe"]["httpGet"]["httpHeaders"]}
    allowed_hosts = of_kind(production, "ConfigMap")["lessons-config"]["data"]["ALLOWED_HOSTS"].split(",")
    assert headers == {"Host": "localhost", "X-Forwarded-Proto": "https"} and "localhost" in allowed_hosts
    # Prometheus reaches web pods by address: their metrics port passes no Host check or HTTPS redirect.
    env = {variable["name"]: variable.get("value") for variable in web["env"]}
    annotations = deployments["lessons-web"]["spec"]["template"]["metadata"]["annotations"]
    assert env["METRICS_PORT"] == annotations["prometheus.io/port"] == "9100"
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in web["ports"]


def test_the_single_processes_stay_single(production: list[Manifest]) -> None:
    deployments = of_kind(production, "Deployment")
    live = deployments["lessons-qoe-live"]["spec"]
    assert live["replicas"] == 1 and live["strategy"] == {"type": "Recreate"}
    assert deployments["lessons-qoe-drain"]["spec"]["replicas"] == 1
    autoscaled = {
        m["spec"]["scaleTargetRef"]["name"]
        for m in production
        if m["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    assert "lessons-qoe-live" not in autoscaled and "lessons-qoe-drain" not in autoscaled


def test_web_scales_on_cpu(production: list[Manifest]) -> None:
    hpa = of_kind(production, "HorizontalPodAutoscaler")
    assert set(hpa) == {"lessons-web", "lessons-beacons"}
    for name, manifest in hpa.items():
        assert manifest["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert manifest["spec"]["minReplicas"] >= 2
        (metric,) = manifest["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"


def test_every_deployment_has_a_disruption_budget_and_the_scaled_ones_spread(production: list[Manifest]) -> None:
    budgets = of_kind(production, "PodDisruptionBudget")
    scalers = {
        m["spec"]["scaleTargetRef"]["name"]
        for m in production
        if m["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    for name, deployment in of_kind(production, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, name
        if name in scalers:
            spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
            assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
            assert all(c["labelSelector"]["matchLabels"].items() <= labels.items() for c in spread), name


def test_network_policies_deny_by_default_and_open_only_what_is_needed(production: list[Manifest]) -> None:
    policies = of_kind(production, "NetworkPolicy")
    deny = policies["lessons-default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    rules = {
        rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: {
            port["port"] for port in rule["ports"]
        }
        for rule in policies["lessons-ingress-http"]["spec"]["ingress"]
    }
    assert rules == {"ingress-nginx": {8000}, "monitoring": {8000, 9100}}  # 9100: the web pods' METRICS_PORT
    (backends,) = policies["lessons-egress-backends"]["spec"]["egress"]
    assert {port["port"] for port in backends["ports"]} == {5432, 6379, 443}
    # Only web and beacons accept connections; every other pod has no ingress rule at all.
    ingress_selected = policies["lessons-ingress-http"]["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(ingress_selected) == ["beacons", "web"]
    for name, policy in policies.items():
        if name != "lessons-ingress-http":
            assert "ingress" not in policy["spec"], name


def test_the_ingress_routes_beacons_apart_and_refuses_metrics(production: list[Manifest]) -> None:
    ingresses = of_kind(production, "Ingress")
    main = ingresses["lessons"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in main["spec"]["rules"][0]["http"]["paths"]}
    assert routes == {"/api/v1/qoe/events/": "lessons-beacons", "/": "lessons-web"}
    annotations = main["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "72m"  # > UPLOAD_MAX_CHUNK_BYTES (64 MiB)
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"  # websockets stay open
    refused = ingresses["lessons-metrics-refused"]
    assert refused["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"] == "127.0.0.1/32"
    assert refused["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/metrics"


def test_migrations_run_as_a_job_of_their_own(production: list[Manifest]) -> None:
    migrate = render(KUBE / "overlays/production/migrate")
    (job,) = of_kind(migrate, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # The Job's overlay brings the configuration and network policies it needs on a first install.
    assert {m["kind"] for m in migrate} == {"ConfigMap", "ServiceAccount", "NetworkPolicy", "Job"}
    assert of_kind(render(KUBE / "overlays/production"), "Job") == {}  # the rollout never re-runs it
