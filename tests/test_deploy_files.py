"""Static checks of the Dockerfile, docker-compose.yml and Kubernetes manifests (no engine here)."""

import copy
import re

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.conftest import REPO_ROOT, clean_env, gunicorn
from tests.http import call

K8S_DIR = REPO_ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.31"


def manifests() -> dict[str, dict]:
    found = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def pod_spec(resource: dict) -> dict:
    return resource["spec"]["template"]["spec"]


WORKLOADS = [
    "Deployment/conclave-web",
    "Deployment/conclave-worker",
    "Deployment/conclave-beat",
    "Deployment/conclave-integrator",
    "Job/conclave-migrate",
]


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(manifests()))
def test_k8s_manifest__valid_against_the_api_schema(name):
    kubernetes_validate.validate(manifests()[name], K8S_VERSION, strict=True)


def test_k8s_validation__misspelled_field__rejected():
    broken = copy.deepcopy(manifests()["Deployment/conclave-web"])
    container = pod_spec(broken)["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization__lists_every_manifest():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}

    assert set(kustomization["resources"]) == files


def test_web__liveness_health_readiness_ready():
    container = pod_spec(manifests()["Deployment/conclave-web"])["containers"][0]

    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/v1/health"
    assert container["args"] == ["web"]


def test_web_service__targets_web_pods():
    service = manifests()["Service/conclave-web"]
    web = manifests()["Deployment/conclave-web"]

    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload__restrictive_security_context(name):
    spec = pod_spec(manifests()[name])

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "limits" in container["resources"]


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload__writable_tmp_volume_for_read_only_root(name):
    spec = pod_spec(manifests()[name])
    mounts = {m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]}

    assert "/tmp" in mounts  # noqa: S108


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload__secrets_only_by_reference(name):
    for container in pod_spec(manifests()[name])["containers"]:
        refs = {next(iter(source)) for source in container["envFrom"]}
        assert refs == {"configMapRef", "secretRef"}
        # Single values only from a secret too (migrate's owner URL): never written inline.
        assert all("secretKeyRef" in var["valueFrom"] for var in container.get("env", []))


def test_migrate_job__alone_holds_the_owner_url_and_the_role_password():
    owners = {
        name
        for name in WORKLOADS
        for container in pod_spec(manifests()[name])["containers"]
        for var in container.get("env", [])
        if var["valueFrom"]["secretKeyRef"]["name"] == "conclave-migrate-secrets"
    }

    assert owners == {"Job/conclave-migrate"}


def test_configmap__holds_no_secret_values():
    data = manifests()["ConfigMap/conclave-config"]["data"]

    assert not {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "PKCS11_PIN",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
    } & set(data)
    assert data["ENVIRONMENT"] == "production"
    assert data["DEV_MODE"] == "false"


def test_worker_and_beat__own_deployments_beat_single():
    worker = manifests()["Deployment/conclave-worker"]
    beat = manifests()["Deployment/conclave-beat"]

    assert pod_spec(worker)["containers"][0]["args"] == ["worker"]
    assert pod_spec(beat)["containers"][0]["args"] == ["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_integrator__own_deployment_with_heartbeat_probe():
    integrator = manifests()["Deployment/conclave-integrator"]
    container = pod_spec(integrator)["containers"][0]
    entrypoint = (REPO_ROOT / "deploy" / "entrypoint.sh").read_text()

    assert container["args"] == ["integrator"]
    assert "/tmp/integrator.alive" in " ".join(container["livenessProbe"]["exec"]["command"])
    assert "--heartbeat-file /tmp/integrator.alive" in entrypoint


# --- Dockerfile ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile():
    parser = DockerfileParser(path=str(REPO_ROOT / "Dockerfile"))
    return parser.structure


def instructions(structure, name):
    return [item["value"] for item in structure if item["instruction"] == name]


def test_dockerfile__multi_stage_slim_runtime(dockerfile):
    stages = instructions(dockerfile, "FROM")

    assert len(stages) >= 2
    assert all("slim" in stage for stage in stages)
    assert "COPY --from=build /opt/venv /opt/venv" in [
        f"COPY {v}" for v in instructions(dockerfile, "COPY")
    ]


def test_dockerfile__runs_as_non_root(dockerfile):
    users = instructions(dockerfile, "USER")

    assert users
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")
    assert uid == str(
        pod_spec(manifests()["Deployment/conclave-web"])["securityContext"]["runAsUser"]
    )


def test_dockerfile__one_image_role_commands(dockerfile):
    entrypoint = (REPO_ROOT / "deploy" / "entrypoint.sh").read_text()

    assert instructions(dockerfile, "ENTRYPOINT") == ['["conclave-entrypoint"]']
    assert instructions(dockerfile, "CMD") == ['["web"]']
    for role in ("web)", "worker)", "beat)", "integrator)", "migrate)"):
        assert role in entrypoint
    assert "manage.py check --deploy" in entrypoint
    # The metrics folder lives on the empty /tmp volume: created before any Python runs.
    assert entrypoint.index('mkdir -p "$PROMETHEUS_MULTIPROC_DIR"') < entrypoint.index("manage.py")


def test_dockerfile__production_settings_and_no_secret_defaults(dockerfile):
    env = " ".join(instructions(dockerfile, "ENV"))

    assert "DJANGO_SETTINGS_MODULE=conclave.settings.production" in env
    assert "SECRET_KEY" not in env and "PASSWORD" not in env


def test_dockerfile__copy_sources_exist(dockerfile):
    for value in instructions(dockerfile, "COPY"):
        words = [word for word in value.split() if not word.startswith("--")]
        if any(item.startswith("--from=") for item in value.split()):
            continue
        for source in words[:-1]:
            assert (REPO_ROOT / source).exists(), source


def test_dockerfile__build_stage_keeps_dependencies_not_a_second_copy_of_the_code(dockerfile):
    run = " ".join(instructions(dockerfile, "RUN"))
    env = " ".join(instructions(dockerfile, "ENV"))

    assert "pip uninstall --yes conclave-hub" in run
    assert "PYTHONPATH=/app" in env  # so `celery --app conclave` finds the code in /app


def _project_packages() -> list[str]:
    """The project's own apps (from INSTALLED_APPS) and the templates folder."""
    from django.conf import settings

    apps = {name.split(".")[0] for name in settings.INSTALLED_APPS}
    return sorted(app for app in apps if (REPO_ROOT / app / "__init__.py").exists()) + ["templates"]


def test_dockerfile__copies_every_app_package(dockerfile):
    runtime_from = [i for i, item in enumerate(dockerfile) if item["instruction"] == "FROM"][1]
    build = " ".join(instructions(dockerfile[:runtime_from], "COPY"))
    runtime = " ".join(instructions(dockerfile[runtime_from:], "COPY"))

    assert {"bot", "mechanic_ui", "orders"} <= set(_project_packages())
    for package in _project_packages():
        assert re.search(rf"\b{package} \./{package}\b", runtime), package
        if package != "templates":
            assert re.search(rf"\b{package} \./{package}\b", build), f"build stage: {package}"


def test_pyproject__packages_and_type_checking_cover_every_app():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    for package in _project_packages()[:-1]:
        assert f'"{package}*"' in pyproject, package
        assert f'"{package}"' in pyproject, package


# --- docker-compose.yml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_compose__services(compose):
    assert {"web", "worker", "beat", "integrator", "postgres", "redis"} <= set(compose["services"])
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("service", ["web", "worker", "integrator", "postgres", "redis"])
def test_compose__healthchecks(compose, service):
    healthcheck = compose["services"][service]["healthcheck"]

    assert healthcheck["test"]
    assert not healthcheck.get("disable")


@pytest.mark.parametrize("service", ["web", "worker", "beat", "integrator"])
def test_compose__app_waits_for_healthy_backends_and_migrations(compose, service):
    depends = compose["services"][service]["depends_on"]

    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", ["web", "worker", "beat", "integrator", "migrate"])
def test_compose__app_hardened_and_secrets_from_environment(compose, service):
    spec = compose["services"][service]

    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert spec["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
    secret = "APP_DATABASE_PASSWORD" if service == "migrate" else "DATABASE_URL"
    assert "${APP_DATABASE_PASSWORD:?" in spec["environment"][secret]


@pytest.mark.parametrize("service", ["web", "worker", "beat", "integrator"])
def test_compose__serving_processes_connect_as_the_least_privilege_role(compose, service):
    url = compose["services"][service]["environment"]["DATABASE_URL"]

    assert url.startswith("postgres://conclave_app:")
    assert "APP_DATABASE_PASSWORD" not in compose["services"][service]["environment"]


def test_compose__only_migrate_connects_as_the_owner_and_grants_the_role(compose):
    env = compose["services"]["migrate"]["environment"]

    assert env["DATABASE_URL"].startswith("postgres://conclave:${POSTGRES_PASSWORD:?")
    assert "app_role_sql --apply" in (REPO_ROOT / "deploy" / "entrypoint.sh").read_text()


@pytest.mark.parametrize("service", ["web", "worker", "beat", "integrator", "migrate"])
def test_compose__software_signing_keys_on_a_volume(compose, service):
    # DEV_MODE keys in the container's /tmp would vanish on restart and stop every append.
    assert "keys:/app/keys" in compose["services"][service]["volumes"]


def test_compose__web_bound_to_loopback(compose):
    assert compose["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]


# --- make run and the container start the same processes ---------------------------------------


def test_procfile__web_worker_beat_integrator():
    procfile = dict(
        line.split(":", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line
    )

    assert set(procfile) == {"web", "worker", "beat", "integrator"}
    assert "conclave.gunicorn_conf" in procfile["web"]
    entrypoint = (REPO_ROOT / "deploy" / "entrypoint.sh").read_text()
    assert "--config python:conclave.gunicorn_conf" in entrypoint


def test_gunicorn_conf__serves_with_no_control_socket__writes_nothing_in_home(tmp_path):
    """gunicorn (25.1 on) opens a control socket in $HOME/.gunicorn by default: a management
    interface nothing here uses, and in the container (read-only root, HOME=/app) a warning at
    every start."""
    home, log = tmp_path / "home", tmp_path / "gunicorn.log"
    home.mkdir()
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        HOME=str(home),
        XDG_RUNTIME_DIR="",
    )

    with gunicorn(env, log=log, config="python:conclave.gunicorn_conf") as base:
        status = call("GET", f"{base}/v1/health")[0]

    assert status == 200, log.read_text()
    assert list(home.iterdir()) == []
    assert "control socket" not in log.read_text().lower()
