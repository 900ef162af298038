"""Kubernetes objects as kubectl would send them, for tests and the demo."""

from __future__ import annotations

from typing import Any


def deployment(name: str, image: str, namespace: str = "default") -> dict[str, Any]:
    """What `kubectl -n NAMESPACE create deployment NAME --image=IMAGE` sends to the API server."""
    container = image.split("/")[-1].split("@")[0].split(":")[0]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": container, "image": image}]}}}}
