"""A loopback AppConfig for tests: moto serves no AppConfig data plane and no deployments.

It answers real boto3 ``appconfig`` and ``appconfigdata`` clients over HTTP, in the REST-JSON wire
format of the AWS service models botocore ships (paths, headers, status codes, error types), and
behaves as AWS documents it:

- ``GetLatestConfiguration`` returns the deployed version of a **Freeform** profile as it was stored,
  with the ``Content-Type`` it was stored with; a profile of type ``AWS.AppConfig.FeatureFlags`` is
  returned in its *retrieval-time format*, ``{"<flag>": {"enabled": bool, <attributes>}}``
  (AppConfig User Guide: "AWS AppConfig Agent local development samples"). The body is empty when
  the session already has the deployed version; each token is valid for one call and every answer
  carries the next one (``Next-Poll-Configuration-Token``).
- Hosted versions are numbered from 1; ``Latest-Version-Number`` / ``LatestDeploymentNumber`` that are
  not the latest are refused (``ConflictException``, one of the operations' modelled errors), as is a
  deployment while another one is still running.
- Deployments complete at once unless ``hold_deployments`` is set (then they stay ``DEPLOYING``).

It is fed from the synthesized template (:meth:`AppConfigService.load_template`), never from our writer.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3

FEATURE_FLAGS_TYPE = "AWS.AppConfig.FeatureFlags"
FREEFORM_TYPE = "AWS.Freeform"
_ACTIVE = ("BAKING", "VALIDATING", "DEPLOYING", "ROLLING_BACK")


class AwsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Version:
    number: int
    content: bytes
    content_type: str
    description: str = ""


@dataclass
class Profile:
    id: str
    name: str
    type: str
    versions: list[Version] = field(default_factory=list)


@dataclass
class Application:
    id: str
    name: str
    environments: dict[str, str] = field(default_factory=dict)  # id -> name
    profiles: dict[str, Profile] = field(default_factory=dict)
    deployments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # environment id -> deployments


def _new_id() -> str:
    return uuid.uuid4().hex[:7]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def check_content(profile_type: str, content: bytes) -> None:
    """A feature-flag profile's data "must conform to the AWS.AppConfig.FeatureFlags JSON schema"
    (its top level: ``version`` required, only ``version``, ``flags``, ``values``); Freeform takes anything."""
    if profile_type != FEATURE_FLAGS_TYPE:
        return
    try:
        document = json.loads(content)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "version" not in document or set(document) - {"version", "flags", "values"}:
        raise AwsError(400, "BadRequestException", "Content does not conform to the AWS.AppConfig.FeatureFlags schema")


def retrieved_form(profile_type: str, content: bytes) -> bytes:
    """What ``GetLatestConfiguration`` returns for a stored version of a profile of this type."""
    if profile_type != FEATURE_FLAGS_TYPE:
        return content
    stored = json.loads(content)
    out = {}
    for name, value in (stored.get("values") or {}).items():
        out[name] = {"enabled": bool(value.get("enabled", False)),
                     **{k: v for k, v in value.items() if k not in ("enabled", "_variants")}}
    return json.dumps(out).encode()


class AppConfigService:
    def __init__(self) -> None:
        self.apps: dict[str, Application] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # token -> {app, env, profile, seen}
        self.hold_deployments = False
        self.fail_next: dict[str, AwsError] = {}  # operation name -> error to answer once
        self.calls: list[str] = []
        self.served: list[int] = []  # the body length of every GetLatestConfiguration answer (0: unchanged)
        self.available = True
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = service.dispatch(method, self.path, dict(self.headers), body)
                except AwsError as err:
                    status, payload = err.status, json.dumps({"Message": err.message}).encode()
                    headers = {"x-amzn-ErrorType": err.code, "Content-Type": "application/json"}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, str(value))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._answer("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def client(self, service: str) -> Any:
        """A real boto3 client of ``appconfig`` or ``appconfigdata`` talking to this service."""
        from botocore.config import Config

        return boto3.session.Session().client(
            service, region_name="us-east-1", endpoint_url=self.url, aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - a loopback fake
            config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1, read_timeout=2))

    # -- set-up -------------------------------------------------------------------------------

    def load_template(self, resources: dict[str, dict]) -> dict[str, str]:
        """Create what the template's AppConfig resources describe; returns logical id -> AppConfig id.
        The template's Deployment resource deploys its hosted version, as CloudFormation does."""
        ids: dict[str, str] = {}

        def ref(value: Any) -> str:
            return ids[value["Ref"]] if isinstance(value, dict) else str(value)

        by_type: dict[str, list[tuple[str, dict]]] = {}
        for logical_id, resource in resources.items():
            by_type.setdefault(resource["Type"], []).append((logical_id, resource.get("Properties", {})))
        for logical_id, props in by_type.get("AWS::AppConfig::Application", []):
            app = Application(_new_id(), props["Name"])
            self.apps[app.id] = app
            ids[logical_id] = app.id
        for logical_id, props in by_type.get("AWS::AppConfig::Environment", []):
            env_id = _new_id()
            self.apps[ref(props["ApplicationId"])].environments[env_id] = props["Name"]
            ids[logical_id] = env_id
        for logical_id, _props in by_type.get("AWS::AppConfig::DeploymentStrategy", []):
            ids[logical_id] = _new_id()
        for logical_id, props in by_type.get("AWS::AppConfig::ConfigurationProfile", []):
            assert props.get("LocationUri") == "hosted", props
            profile = Profile(_new_id(), props["Name"], props.get("Type", FREEFORM_TYPE))
            self.apps[ref(props["ApplicationId"])].profiles[profile.id] = profile
            ids[logical_id] = profile.id
        for logical_id, props in by_type.get("AWS::AppConfig::HostedConfigurationVersion", []):
            profile = self.apps[ref(props["ApplicationId"])].profiles[ref(props["ConfigurationProfileId"])]
            check_content(profile.type, props["Content"].encode())
            profile.versions.append(Version(len(profile.versions) + 1, props["Content"].encode(),
                                            props["ContentType"], props.get("Description", "")))
            ids[logical_id] = str(len(profile.versions))
        for _, props in by_type.get("AWS::AppConfig::Deployment", []):
            self._deploy(ref(props["ApplicationId"]), ref(props["EnvironmentId"]), ref(props["DeploymentStrategyId"]),
                         ref(props["ConfigurationProfileId"]), ref(props["ConfigurationVersion"]), "")
        return ids

    # -- state ----------------------------------------------------------------------------------

    def _app(self, app_id: str) -> Application:
        app = self.apps.get(app_id) or next((a for a in self.apps.values() if a.name == app_id), None)
        if app is None:
            raise AwsError(404, "ResourceNotFoundException", f"Application {app_id} not found")
        return app

    def _profile(self, app: Application, profile_id: str) -> Profile:
        profile = app.profiles.get(profile_id) or next(
            (p for p in app.profiles.values() if p.name == profile_id), None)
        if profile is None:
            raise AwsError(404, "ResourceNotFoundException", f"Configuration profile {profile_id} not found")
        return profile

    def _env(self, app: Application, env_id: str) -> str:
        if env_id in app.environments:
            return env_id
        for found, name in app.environments.items():
            if name == env_id:
                return found
        raise AwsError(404, "ResourceNotFoundException", f"Environment {env_id} not found")

    def deployed_version(self, app_id: str, env_id: str, profile_id: str) -> Version | None:
        app = self._app(app_id)
        profile = self._profile(app, profile_id)
        done = [d for d in app.deployments.get(self._env(app, env_id), [])
                if d["ConfigurationProfileId"] == profile.id and d["State"] == "COMPLETE"]
        if not done:
            return None
        number = int(max(done, key=lambda d: d["DeploymentNumber"])["ConfigurationVersion"])
        return next((v for v in profile.versions if v.number == number), None)

    def _deploy(self, app_id: str, env_id: str, strategy: str, profile_id: str, version: str,
                description: str, latest_deployment: int | None = None) -> dict[str, Any]:
        app = self._app(app_id)
        env_id = self._env(app, env_id)
        profile = self._profile(app, profile_id)
        if not any(str(v.number) == str(version) for v in profile.versions):
            raise AwsError(400, "BadRequestException", f"Version {version} of {profile.id} does not exist")
        deployments = app.deployments.setdefault(env_id, [])
        if any(d["State"] in _ACTIVE for d in deployments):
            raise AwsError(409, "ConflictException", "A deployment is already in progress for this environment")
        if latest_deployment is not None and deployments and latest_deployment != max(
                d["DeploymentNumber"] for d in deployments):
            raise AwsError(409, "ConflictException", "LatestDeploymentNumber is not the latest deployment")
        held = self.hold_deployments
        deployment = {
            "ApplicationId": app.id, "EnvironmentId": env_id, "DeploymentStrategyId": strategy,
            "ConfigurationProfileId": profile.id, "DeploymentNumber": len(deployments) + 1,
            "ConfigurationName": profile.name, "ConfigurationLocationUri": "hosted",
            "ConfigurationVersion": str(version), "Description": description, "DeploymentDurationInMinutes": 0,
            "GrowthType": "LINEAR", "GrowthFactor": 100.0, "FinalBakeTimeInMinutes": 0,
            "State": "DEPLOYING" if held else "COMPLETE",
            "EventLog": [{"EventType": "DEPLOYMENT_STARTED", "TriggeredBy": "USER",
                          "Description": "Deployment started", "OccurredAt": _now()}],
            "PercentageComplete": 0.0 if held else 100.0, "StartedAt": _now(),
        }
        if not held:
            deployment["CompletedAt"] = _now()
        deployments.append(deployment)
        return deployment

    # -- the wire -----------------------------------------------------------------------------

    def dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes
                 ) -> tuple[int, dict[str, Any], bytes]:
        if not self.available:
            raise AwsError(500, "InternalServerException", "AppConfig is unavailable (test)")
        url = urlparse(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        routes = [
            ("POST", r"/configurationsessions", "StartConfigurationSession", self._start_session),
            ("GET", r"/configuration", "GetLatestConfiguration", self._latest_configuration),
            ("GET", r"/applications/(?P<app>[^/]+)/configurationprofiles/(?P<profile>[^/]+)/hostedconfigurationversions",
             "ListHostedConfigurationVersions", self._list_versions),
            ("POST", r"/applications/(?P<app>[^/]+)/configurationprofiles/(?P<profile>[^/]+)/hostedconfigurationversions",
             "CreateHostedConfigurationVersion", self._create_version),
            ("GET", r"/applications/(?P<app>[^/]+)/configurationprofiles/(?P<profile>[^/]+)/hostedconfigurationversions/"
                    r"(?P<number>\d+)", "GetHostedConfigurationVersion", self._get_version),
            ("DELETE", r"/applications/(?P<app>[^/]+)/configurationprofiles/(?P<profile>[^/]+)/"
                       r"hostedconfigurationversions/(?P<number>\d+)", "DeleteHostedConfigurationVersion",
             self._delete_version),
            ("GET", r"/applications/(?P<app>[^/]+)/environments/(?P<env>[^/]+)/deployments", "ListDeployments",
             self._list_deployments),
            ("POST", r"/applications/(?P<app>[^/]+)/environments/(?P<env>[^/]+)/deployments", "StartDeployment",
             self._start_deployment),
        ]
        for verb, pattern, operation, handler in routes:
            match = re.fullmatch(pattern, url.path)
            if verb == method and match:
                with self._lock:
                    self.calls.append(operation)
                    if operation in self.fail_next:
                        raise self.fail_next.pop(operation)
                    return handler(match.groupdict(), query, {k.lower(): v for k, v in headers.items()}, body)
        raise AwsError(404, "ResourceNotFoundException", f"no route for {method} {url.path}")

    def _start_session(self, _: dict, __: dict, ___: dict, body: bytes) -> tuple[int, dict, bytes]:
        request = json.loads(body)
        app = self._app(request["ApplicationIdentifier"])
        profile = self._profile(app, request["ConfigurationProfileIdentifier"])
        env_id = self._env(app, request["EnvironmentIdentifier"])
        token = uuid.uuid4().hex
        self.sessions[token] = {"app": app.id, "env": env_id, "profile": profile.id, "seen": None}
        return 201, {"Content-Type": "application/json"}, json.dumps({"InitialConfigurationToken": token}).encode()

    def _latest_configuration(self, _: dict, query: dict, __: dict, ___: bytes) -> tuple[int, dict, bytes]:
        session = self.sessions.pop(query.get("configuration_token", ""), None)
        if session is None:  # unknown, or already used: each token is valid for one call
            raise AwsError(400, "BadRequestException", "Invalid or already used configuration token")
        version = self.deployed_version(session["app"], session["env"], session["profile"])
        next_token = uuid.uuid4().hex
        headers: dict[str, Any] = {"Next-Poll-Configuration-Token": next_token, "Next-Poll-Interval-In-Seconds": 60}
        body = b""
        if version is not None and session["seen"] != version.number:
            profile = self.apps[session["app"]].profiles[session["profile"]]
            body = retrieved_form(profile.type, version.content)
            headers["Content-Type"] = "application/json" if profile.type == FEATURE_FLAGS_TYPE else version.content_type
            headers["Version-Label"] = f"v{version.number}"
            session = {**session, "seen": version.number}
        self.sessions[next_token] = session
        self.served.append(len(body))
        return 200, headers, body

    def _list_versions(self, path: dict, query: dict, _: dict, __: bytes) -> tuple[int, dict, bytes]:
        app = self._app(path["app"])
        profile = self._profile(app, path["profile"])
        items = [{"ApplicationId": app.id, "ConfigurationProfileId": profile.id, "VersionNumber": v.number,
                  "Description": v.description, "ContentType": v.content_type}
                 for v in sorted(profile.versions, key=lambda v: -v.number)]
        size = int(query.get("max_results", 50))
        start = int(query.get("next_token", 0))
        page: dict[str, Any] = {"Items": items[start:start + size]}
        if start + size < len(items):
            page["NextToken"] = str(start + size)
        return 200, {"Content-Type": "application/json"}, json.dumps(page).encode()

    def _version_headers(self, app: Application, profile: Profile, version: Version) -> dict[str, Any]:
        return {"Application-Id": app.id, "Configuration-Profile-Id": profile.id, "Version-Number": version.number,
                "Content-Type": version.content_type, "Description": version.description}

    def _get_version(self, path: dict, _: dict, __: dict, ___: bytes) -> tuple[int, dict, bytes]:
        app = self._app(path["app"])
        profile = self._profile(app, path["profile"])
        version = next((v for v in profile.versions if v.number == int(path["number"])), None)
        if version is None:
            raise AwsError(404, "ResourceNotFoundException", f"Version {path['number']} not found")
        return 200, self._version_headers(app, profile, version), version.content

    def _create_version(self, path: dict, _: dict, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        app = self._app(path["app"])
        profile = self._profile(app, path["profile"])
        latest = max((v.number for v in profile.versions), default=0)
        if "latest-version-number" in headers and int(headers["latest-version-number"]) != latest:
            raise AwsError(409, "ConflictException", "LatestVersionNumber is not the latest version")
        if not headers.get("content-type"):
            raise AwsError(400, "BadRequestException", "ContentType is required")
        check_content(profile.type, body)
        version = Version(latest + 1, body, headers["content-type"], headers.get("description", ""))
        profile.versions.append(version)
        return 201, self._version_headers(app, profile, version), body

    def _delete_version(self, path: dict, _: dict, __: dict, ___: bytes) -> tuple[int, dict, bytes]:
        app = self._app(path["app"])
        profile = self._profile(app, path["profile"])
        profile.versions = [v for v in profile.versions if v.number != int(path["number"])]
        return 204, {}, b""

    def _list_deployments(self, path: dict, _: dict, __: dict, ___: bytes) -> tuple[int, dict, bytes]:
        app = self._app(path["app"])
        keys = ("DeploymentNumber", "ConfigurationProfileId", "ConfigurationName", "ConfigurationVersion",
                "DeploymentDurationInMinutes", "GrowthType", "GrowthFactor", "FinalBakeTimeInMinutes", "State",
                "PercentageComplete", "StartedAt", "CompletedAt")
        items = [{k: d[k] for k in keys if k in d}
                 for d in sorted(app.deployments.get(self._env(app, path["env"]), []),
                                 key=lambda d: -d["DeploymentNumber"])]
        return 200, {"Content-Type": "application/json"}, json.dumps({"Items": items}).encode()

    def _start_deployment(self, path: dict, _: dict, __: dict, body: bytes) -> tuple[int, dict, bytes]:
        request = json.loads(body)
        deployment = self._deploy(path["app"], path["env"], request["DeploymentStrategyId"],
                                  request["ConfigurationProfileId"], request["ConfigurationVersion"],
                                  request.get("Description", ""), request.get("LatestDeploymentNumber"))
        return 201, {"Content-Type": "application/json"}, json.dumps(deployment).encode()
