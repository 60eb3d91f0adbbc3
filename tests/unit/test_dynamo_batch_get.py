"""adapters/dynamo.py batch_get: 100 keys a request, unprocessed keys asked again, a bounded number of times."""

from __future__ import annotations

from typing import Any

import pytest

from powerx_agent.adapters.dynamo import batch_get, key, to_item
from powerx_agent.errors import AgentError


class FlakyBatchReads:
    """A DynamoDB client whose BatchGetItem answers from ``items`` but leaves the first ``unprocessed``
    keys of each request unprocessed ``rounds`` times in a row."""

    def __init__(self, items: dict[str, dict[str, Any]], unprocessed: int = 0, rounds: int = 0) -> None:
        self.items, self.unprocessed, self.rounds = items, unprocessed, rounds
        self.requests: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        self.requests.append(len(keys))
        left = keys[:self.unprocessed] if self.rounds else []
        self.rounds -= 1 if left else 0
        found = [to_item(self.items[k["pk"]["S"]]) for k in keys[len(left):] if k["pk"]["S"] in self.items]
        return {"Responses": {table: found},
                "UnprocessedKeys": {table: {**request, "Keys": left}} if left else {}}


def _keys(n: int) -> list[dict[str, Any]]:
    return [key(pk=f"WF#{i}", sk="META") for i in range(n)]


def test_given_250_keys_when_read_in_batch_then_three_requests_of_at_most_100_and_absent_items_left_out():
    client = FlakyBatchReads({f"WF#{i}": {"pk": f"WF#{i}", "sk": "META", "n": i} for i in range(0, 250, 2)})
    found = batch_get(client, "t", _keys(250))
    assert client.requests == [100, 100, 50]
    assert sorted(i["n"] for i in found) == list(range(0, 250, 2))


def test_given_unprocessed_keys_when_read_in_batch_then_they_are_asked_again_until_read():
    client = FlakyBatchReads({f"WF#{i}": {"pk": f"WF#{i}", "sk": "META"} for i in range(10)}, unprocessed=3, rounds=2)
    found = batch_get(client, "t", _keys(10))
    assert client.requests == [10, 3, 3]
    assert sorted(i["pk"] for i in found) == sorted(f"WF#{i}" for i in range(10))


def test_given_keys_left_unprocessed_every_time_when_read_in_batch_then_it_gives_up_after_the_attempts():
    client = FlakyBatchReads({"WF#0": {"pk": "WF#0", "sk": "META"}}, unprocessed=1, rounds=99)
    with pytest.raises(AgentError) as raised:
        batch_get(client, "t", _keys(1), code="workflow.unread", attempts=3)
    assert raised.value.code == "workflow.unread" and client.requests == [1, 1, 1]
