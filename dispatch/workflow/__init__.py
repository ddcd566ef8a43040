"""Workflow: the closed loop (transition table, one version-guarded update per action, business-time deadlines, escalation, the history hash chain)."""
