"""KPI: the SPEC §5 figures, reports and daily snapshots."""
