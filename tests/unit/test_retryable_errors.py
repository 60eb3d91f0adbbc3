"""One list of retryable errors: the compiled Retry blocks retry exactly the node errors that are retryable."""

from __future__ import annotations

from powerx_agent import errors
from powerx_agent.taskflow.asl import NON_RETRYABLE_ERRORS, RETRYABLE_ERRORS


def test_given_the_node_errors_when_listed_then_the_retried_ones_are_exactly_the_retryable_classes():
    node_errors = {c.__name__ for c in errors.RetryableError.__subclasses__()}
    assert set(errors.RETRYABLE) == node_errors
    assert RETRYABLE_ERRORS == errors.RETRYABLE and NON_RETRYABLE_ERRORS == errors.NOT_RETRYABLE
    assert not set(errors.RETRYABLE) & set(errors.NOT_RETRYABLE)
    assert all(not getattr(errors, name).retryable for name in errors.NOT_RETRYABLE)
