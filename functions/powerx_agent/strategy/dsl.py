"""Strategy DSL models (docs/strategies.md): strict pydantic models, unknown keys are errors.

The YAML text is read by :mod:`powerx_agent.strategy.yamlload` (safe, YAML 1.2 booleans, no
aliases, positions kept); this module validates the resulting mapping. Conditions (``when``) and
EventBridge patterns (``pattern``) are kept as plain data here and compiled once at load by
:mod:`~powerx_agent.strategy.conditions` and :mod:`~powerx_agent.strategy.pattern`. The ``flow`` is the taskflow's own model
(:mod:`powerx_agent.taskflow.model`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from powerx_agent.taskflow.model import FlowSpec, StrictModel

ID_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"


class Trigger(StrictModel):
    event: tuple[str, ...] = Field(min_length=1)

    @field_validator("event", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class Strategy(StrictModel):
    id: str = Field(pattern=ID_RE)
    version: int = Field(ge=1)
    status: Literal["draft", "approved", "retired"] = "draft"
    owner: str = Field(min_length=1)
    description: str | None = None
    tenants: tuple[str, ...] = ("*",)
    on: Trigger
    when: dict[str, Any] | None = None
    pattern: dict[str, Any] | None = None
    weight: int = Field(default=0, ge=0, le=1_000_000)
    variables: dict[str, Any] = Field(default_factory=dict)
    flow: FlowSpec

    @model_validator(mode="after")
    def _when_or_pattern(self) -> Strategy:
        if self.when is not None and self.pattern is not None:
            raise ValueError("give either 'when' or 'pattern', not both")
        for tenant in self.tenants:
            if tenant != "*" and not re.match(ID_RE, tenant):
                raise ValueError(f"tenant '{tenant}' is not a valid tenant id")
        return self

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"

    def applies_to_tenant(self, tenant_id: str) -> bool:
        return "*" in self.tenants or tenant_id in self.tenants
