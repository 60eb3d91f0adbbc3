"""One construct per capability (docs/architecture.md; docs/taskflow.md)."""
