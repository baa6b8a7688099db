"""pardus.alerts: alert rules as data (rules.py), the alert lifecycle (lifecycle.py) and delivery (notify.py)."""
