"""The HTTP side: Gatekeeper's external-data protocol, health and metrics, TLS and the gunicorn runner."""
