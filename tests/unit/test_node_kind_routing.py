"""Each node function runs only its own kind of node (least privilege makes misroutes fail late)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from powerx_agent.errors import NodeInputError
from powerx_agent.nodes.runner import NodeRunner


class ExplodingStores:
    """Any store access would mean the check came too late."""

    def __getattr__(self, name: str):
        raise AssertionError(f"touched deps.{name} before the kind check")


def test_given_plugin_node_when_sent_to_notify_function_then_refused_before_any_io():
    deps = ExplodingStores()
    object.__setattr__(deps, "__dict__", {"settings": SimpleNamespace()})
    runner = NodeRunner(deps, metrics=None)
    payload = {"node": {"id": "render", "kind": "plugin", "plugin": "report-renderer"},
               "workflow": {"workflow_id": "wf-1", "tenant_id": "acme", "strategy_id": "s"}}
    with pytest.raises(NodeInputError) as caught:
        runner.run(payload, expected_kind="notify")
    assert "'plugin' node" in caught.value.message and "'notify'" in caught.value.message
