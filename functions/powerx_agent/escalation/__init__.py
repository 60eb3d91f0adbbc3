"""Escalation to people: review work orders, notifications and the open-review backlog."""
