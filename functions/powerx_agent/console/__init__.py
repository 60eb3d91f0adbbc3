"""The operations console: a local web UI on 127.0.0.1 over the operator's own credentials (docs/console.md)."""
