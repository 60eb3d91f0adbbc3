"""CDK app for PowerX Agent Taskflow (DESIGN.md §2): one stack, one construct per capability."""
