"""The audit's memo asks the provider in batches no larger than the provider accepts."""

from __future__ import annotations

from typing import Any

from provider.audit.memo import MemoExternalData
from provider.audit.objects import object_images
from provider.policy.external import gatekeeper_shape


def test_prefetch_batches_stay_within_the_providers_max_keys() -> None:
    sizes: list[int] = []

    def provider(request: dict[str, Any]) -> dict[str, Any]:  # answers like a server with maxKeys 2
        keys = request["keys"]
        sizes.append(len(keys))
        if len(keys) > 2:
            return gatekeeper_shape([], f"REQUEST_REFUSED: request.keys has {len(keys)} keys", 400)
        return gatekeeper_shape([{"key": k, "value": {"verified": True}} for k in keys])

    memo = MemoExternalData(provider, batch=2)
    memo.prefetch("sigwarden", [f"img{i}" for i in range(5)])
    assert sizes == [2, 2, 1] and not memo.system_errors
    assert memo.answer("img4") == ({"verified": True}, "")


def test_image_volumes_are_prefetched_with_the_containers() -> None:
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "m", "image": "app:1"}],
                                   "volumes": [{"name": "v", "image": {"reference": "models:1"}},
                                               {"name": "e", "emptyDir": {}},
                                               {"name": "b", "image": {"reference": " "}}]}}
    assert object_images(pod) == ["app:1", "models:1"]
