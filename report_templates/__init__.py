"""Jinja2 templates, CSS and fonts for auditkit's reports (installed as auditkit.report_templates)."""
