"""What the cloud tests share: a signed image pushed to a registry in the test world, and an engine whose one
store reaches it with cloud credentials."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import build_config
from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from tests.helpers import write_yaml
from tests.registry import RegistryServer

KEY = ec.generate_private_key(ec.SECP256R1())


def publish(tmp_path: Path, server: RegistryServer, repository: str, public_host: str = "",
            session: requests.Session | None = None) -> str:
    """A cosign-signed image pushed to `server` (known to clients as `public_host`, when a stand-in fronts it);
    its digest."""
    host = public_host or server.host
    writer = LayoutWriter(tmp_path / "staging" / f"{host}-{repository.replace('/', '_')}", "repo")
    digest = writer.add_image("v1", f"{host}/{repository}".encode())["digest"]
    cosign.sign_image(writer, digest, f"{host}/{repository}", KEY)
    server.push_layout(writer.path, repository, session)
    return str(digest)


def engine_for(tmp_path: Path, stores: list[dict[str, Any]], authorities: list[dict[str, Any]] | None = None,
               name: str = "config.yaml") -> Engine:
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(KEY))
    data = {"server": {"requestDeadline": "10s"}, "stores": stores,
            "authorities": authorities or [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]}
    return Engine(build_config(data, write_yaml(tmp_path / name, data)))


def verify(engine: Engine, image: str) -> Any:
    """The engine's item for `image` (value or error), under a generous deadline."""
    return engine.verify([image], "t", deadline=time.monotonic() + 30)[0]


def assert_verified(item: Any, digest: str) -> None:
    """The item is an answer, not an error, and says `digest` verified."""
    assert not item.error, item.error
    assert item.value["verified"] is True and item.value["digest"] == digest


def verify_once(tmp_path: Path, stores: list[dict[str, Any]], image: str,
                authorities: list[dict[str, Any]] | None = None) -> Any:
    """The item for `image` from a fresh engine over `stores`, shut down afterwards."""
    engine = engine_for(tmp_path, stores, authorities)
    try:
        return verify(engine, image)
    finally:
        engine.shutdown()


def product_logs(caplog: Any) -> str:
    """What sigwarden and the SDKs it drives logged (the stand-ins' own access logs left out)."""
    return "\n".join(caplog.handler.format(r) for r in caplog.records if not r.name.startswith("werkzeug"))
