"""The flow model: a taskflow's nodes, their kinds, retries, callbacks and dependencies, and the
failure policy (strict pydantic models, unknown keys are errors; docs/taskflow.md).

A strategy carries one :class:`FlowSpec` (``flow:``); the builder and the ASL compiler of this
package read it, and nothing here knows about strategies.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NODE_ID_RE = r"^[a-z0-9][a-z0-9-]{0,47}$"
PLUGIN_ID_RE = r"^[a-z0-9][a-z0-9._-]{0,63}$"

_DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> float:
    """``"2s"``, ``"15m"``, ``"4h"``, ``"500ms"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 15m, 4h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION_RE.match(str(value).strip())
    if not match:
        raise ValueError(f"'{value}' is not a duration: use a number with ms, s, m, h or d (e.g. 30s, 15m)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, Field(ge=0)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration_field(value: Any) -> Any:
    return parse_duration(value) if value is not None else value


class RetryPolicy(StrictModel):
    attempts: int = Field(default=3, ge=1, le=10, description="total attempts, the first included")
    backoff: Duration = Field(default=2.0, description="delay before the first retry")
    max_backoff: Duration = Field(default=60.0, description="cap on any single delay")
    rate: float = Field(default=2.0, ge=1.0, le=10.0, description="backoff multiplier")

    _parse = field_validator("backoff", "max_backoff", mode="before")(_duration_field)


class CallbackPolicy(StrictModel):
    timeout: Duration = Field(default=600.0, gt=0)
    heartbeat: Duration | None = Field(default=None, gt=0)

    _parse = field_validator("timeout", "heartbeat", mode="before")(_duration_field)

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> CallbackPolicy:
        if self.heartbeat is not None and self.heartbeat >= self.timeout:
            raise ValueError("callback.heartbeat must be shorter than callback.timeout")
        return self


class NotifySpec(StrictModel):
    to: str = Field(min_length=1)
    template: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")


class ManualReviewSpec(StrictModel):
    queue: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    reason: str = Field(min_length=1, max_length=500)
    sla: Duration = Field(default=4 * 3600.0, gt=0)

    _parse = field_validator("sla", mode="before")(_duration_field)


NodeKind = Literal["plugin", "notify", "manual_review"]


class NodeSpec(StrictModel):
    id: str = Field(pattern=NODE_ID_RE)
    plugin: str | None = Field(default=None, pattern=PLUGIN_ID_RE)
    notify: NotifySpec | None = None
    manual_review: ManualReviewSpec | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout: Duration = Field(default=60.0, gt=0, le=900)
    callback: CallbackPolicy | None = None
    after: tuple[str, ...] = ()
    when: dict[str, Any] | None = None

    _parse = field_validator("timeout", mode="before")(_duration_field)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> NodeSpec:
        kinds = [k for k in ("plugin", "notify", "manual_review") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"node '{self.id}' needs exactly one of plugin, notify, manual_review (found: {found})")
        if self.callback is not None and self.plugin is None:
            raise ValueError(f"node '{self.id}': callback applies to plugin nodes only")
        if len(set(self.after)) != len(self.after):
            raise ValueError(f"node '{self.id}': 'after' lists a node twice")
        return self

    @property
    def kind(self) -> NodeKind:
        if self.plugin is not None:
            return "plugin"
        if self.notify is not None:
            return "notify"
        return "manual_review"

    @property
    def waits_for_callback(self) -> bool:
        return self.callback is not None or self.manual_review is not None


class EscalationSpec(StrictModel):
    queue: str = Field(default="ops", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    notify: tuple[str, ...] = ()


class OnFailure(StrictModel):
    escalate: EscalationSpec = Field(default_factory=EscalationSpec)


class FlowSpec(StrictModel):
    mode: Literal["auto", "standard", "express"] = "auto"
    timeout: Duration = Field(default=3600.0, gt=0)
    nodes: tuple[NodeSpec, ...] = Field(min_length=1)
    on_failure: OnFailure = Field(default_factory=OnFailure)

    _parse = field_validator("timeout", mode="before")(_duration_field)
