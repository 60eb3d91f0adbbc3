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


class Expectation(StrictModel):
    """What a strategy test expects of one event: the strategy selected (``none``: no strategy), its
    version, rendered variables (those named), each named node's ``when`` outcome (true: the node runs),
    or the ingest rejection (its code) the tenant registry makes of the event."""

    strategy: str | None = Field(default=None, max_length=80)
    version: int | None = Field(default=None, ge=1)
    variables: dict[str, Any] = Field(default_factory=dict)
    when: dict[str, bool] = Field(default_factory=dict)
    rejected: str | None = Field(default=None, max_length=80)


class StrategyTest(StrictModel):
    """One fixture: an event (an EventBridge event: ``source``, ``detail-type``, ``detail``), inline or
    as ``event_file`` (relative to the file holding the test), and what to expect."""

    name: str = Field(min_length=1, max_length=200)
    event: dict[str, Any] | None = None
    event_file: str | None = Field(default=None, max_length=1024)
    expect: Expectation

    @model_validator(mode="after")
    def _one_event(self) -> StrategyTest:
        if (self.event is None) == (self.event_file is None):
            raise ValueError("give either 'event' or 'event_file'")
        return self


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
    tests: tuple[StrategyTest, ...] = Field(default=(), max_length=200)
    """Fixtures ``strategy test --suite`` runs (an expectation without ``strategy`` expects this one)."""

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
