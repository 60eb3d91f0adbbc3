"""CDK app for PowerX Agent Taskflow (docs/architecture.md): one stack, one construct per capability."""
