"""The match step: an accepted event → a decision → a started workflow (or an escalation)."""
