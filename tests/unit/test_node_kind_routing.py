"""Each node function runs only its own kind of node (least privilege makes misroutes fail late)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from powerx_agent.errors import AttemptsExhausted, NodeInputError
from powerx_agent.handoffs.tasks import NodeTask
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
        runner.run(dict(NodeTask.check(payload)), expected_kind="notify")
    assert "'plugin' node" in caught.value.message and "'notify'" in caught.value.message


def test_given_a_node_failed_for_good_in_the_express_head_when_the_continuation_reaches_it_then_not_called_again():
    deps = ExplodingStores()
    object.__setattr__(deps, "__dict__", {"settings": SimpleNamespace()})
    payload = {"node": {"id": "tell-owner", "kind": "notify", "notify": {"to": "x", "template": "t"}},
               "workflow": {"workflow_id": "wf-1", "tenant_id": "acme", "strategy_id": "s",
                            "failed_before": ["tell-owner"]}}
    with pytest.raises(AttemptsExhausted) as caught:  # no store, no downstream touched
        NodeRunner(deps, metrics=None).run(dict(NodeTask.check(payload)), expected_kind="notify")
    assert "failed for good in the Express head" in caught.value.message
