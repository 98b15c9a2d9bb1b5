"""report: render a Profile for people (console) and for tools (JSON)."""
