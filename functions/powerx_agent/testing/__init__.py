"""In-memory fakes of the engine's adapters, for tests of code built on the engine and for the
benchmarks (like ``temporalio.testing``): ``from powerx_agent.testing.fakes import FakeDeps``.
Not shipped to Lambda (infra/components/functions.py PACKAGE_EXCLUDE)."""
