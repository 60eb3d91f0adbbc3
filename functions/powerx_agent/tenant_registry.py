"""The tenant registry's records and files (pure: no AWS).

One model serves every writer of ``agent_tenants``: the embedded runtime's seed
(``config/tenants.yaml``) and ``powerx-agent tenants apply FILE``. A file is read with the bounded
YAML loader of the strategy library (no aliases, no custom tags, size and depth limits) and every
problem in it is reported at once, each with ``file:line:col``, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from powerx_agent.errors import AgentError
from powerx_agent.ingest.envelope import EVENT_TYPE_RE, TENANT_RE
from powerx_agent.strategy.yamlload import load_yaml
from powerx_agent.taskflow.model import PLUGIN_ID_RE

STATUSES = ("active", "suspended", "disabled")
"""Only ``active`` tenants' events are accepted (ingest answers ``tenant.suspended`` otherwise)."""
MAX_TENANTS_PER_FILE = 1000
MAX_TTL_HOURS = 24 * 30
EMAIL_RE = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,8}$"
REGISTRY_FIELDS = ("tenant_id", "status", "name", "owner", "notify", "allowed_event_types", "allowed_plugins",
                   "idempotency_ttl_hours")
"""What a file declares; the store adds ``revision``, ``updated_at`` and ``updated_by``."""
STORE_FIELDS = ("revision", "updated_at", "updated_by")


class TenantFileError(AgentError):
    code = "tenants.invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems), code="tenants.invalid",
                         details={"problems": problems})
        self.problems = problems


def _unique(values: list[str], what: str) -> list[str]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{what} repeats {sorted(set(seen))}")
    return values


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    tenant_id: str = Field(pattern=TENANT_RE)
    status: Literal["active", "suspended", "disabled"] = "active"
    name: str = Field(min_length=1, max_length=200)
    owner: str = Field(pattern=EMAIL_RE, max_length=320)
    notify: list[str] = Field(min_length=1, max_length=20)
    allowed_event_types: list[str] = Field(min_length=1, max_length=100)
    allowed_plugins: list[str] = Field(default_factory=list, max_length=100)
    idempotency_ttl_hours: float = Field(default=24, gt=0, le=MAX_TTL_HOURS)

    @field_validator("notify")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.match(EMAIL_RE, v)]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad[:5]}")
        return _unique(value, "notify")

    @field_validator("allowed_event_types")
    @classmethod
    def _event_types(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v != "*" and not re.match(EVENT_TYPE_RE, v)]
        if bad:
            raise ValueError(f"not event types (or \"*\"): {bad[:5]}")
        return _unique(value, "allowed_event_types")

    @field_validator("allowed_plugins")
    @classmethod
    def _plugins(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v != "*" and not re.match(PLUGIN_ID_RE, v)]
        if bad:
            raise ValueError(f"not plugin ids (or \"*\"): {bad[:5]}")
        return _unique(value, "allowed_plugins")

    def record(self) -> dict[str, Any]:
        """The registry fields as stored (numbers as DynamoDB gives them back)."""
        data = self.model_dump()
        ttl = data["idempotency_ttl_hours"]
        data["idempotency_ttl_hours"] = int(ttl) if float(ttl).is_integer() else ttl
        return data


def load_tenants(text: str | bytes, source: str) -> list[Tenant]:
    """Every tenant of a registry file (``tenants: [...]``), or :class:`TenantFileError` listing
    every problem with its position."""
    try:
        loaded = load_yaml(text, source)
    except AgentError as exc:
        raise TenantFileError([str(exc)]) from None
    data = loaded.data

    def at(path: tuple) -> str:
        line, col = loaded.position(path)
        return f"{source}:{line}:{col}"

    if not isinstance(data, dict) or set(data) != {"tenants"} or not isinstance(data["tenants"], list):
        raise TenantFileError([f"{at(())} tenants.schema: the file must be a mapping with one key, "
                               "'tenants', holding a list of tenants"])
    entries = data["tenants"]
    if len(entries) > MAX_TENANTS_PER_FILE:
        raise TenantFileError([f"{at(('tenants',))} tenants.too_many: {len(entries)} tenants, "
                               f"at most {MAX_TENANTS_PER_FILE} per file"])
    problems: list[str] = []
    tenants: list[Tenant] = []
    first_seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        try:
            tenant = Tenant.model_validate(entry)
        except ValidationError as exc:
            for error in exc.errors()[:20]:
                loc = tuple(error.get("loc", ()))
                name = ".".join(str(p) for p in loc) or "tenant"
                problems.append(f"{at(('tenants', i, *loc))} tenants.schema: tenants[{i}].{name}: {error['msg']}")
            continue
        if tenant.tenant_id in first_seen:
            problems.append(f"{at(('tenants', i, 'tenant_id'))} tenants.duplicate: tenant '{tenant.tenant_id}' "
                            f"is also tenants[{first_seen[tenant.tenant_id]}]")
            continue
        first_seen[tenant.tenant_id] = i
        tenants.append(tenant)
    if problems:
        raise TenantFileError(problems)
    return tenants


@dataclass(frozen=True)
class Change:
    """What applying a file does to one tenant: ``create``, ``update`` or ``unchanged``."""

    tenant_id: str
    action: Literal["create", "update", "unchanged"]
    before: dict[str, Any] | None
    after: dict[str, Any]
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (before, after)


def registry_view(item: dict[str, Any]) -> dict[str, Any]:
    """The registry fields of a stored item (what a file could have declared)."""
    return {k: item[k] for k in REGISTRY_FIELDS if k in item}


def diff(current: dict[str, dict[str, Any]], desired: list[Tenant]) -> list[Change]:
    """Compare the stored items (by tenant id) with the tenants of a file, in the file's order."""
    changes = []
    for tenant in desired:
        after = tenant.record()
        stored = current.get(tenant.tenant_id)
        if stored is None:
            changes.append(Change(tenant.tenant_id, "create", None, after))
            continue
        before = registry_view(stored)
        fields = {k: (before.get(k), after[k]) for k in REGISTRY_FIELDS if before.get(k) != after[k]}
        fields.update({k: (v, None) for k, v in sorted(stored.items())  # attributes no file declares: dropped
                       if k not in REGISTRY_FIELDS and k not in STORE_FIELDS})
        changes.append(Change(tenant.tenant_id, "update" if fields else "unchanged", stored, after, fields))
    return changes
