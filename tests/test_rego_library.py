"""The Rego library's helpers, run in regorus: images of an object, which images a review decides, the keys
sent to the provider, how its answer is read, and exemptions by tag and digest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import rego_library

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


REGO = rego_library()


def call(function: str, *arguments: Any) -> Any:
    """The value of `data.lib.sigwarden.<function>(arguments…)`, or None when it is undefined."""
    args = ", ".join(json.dumps(a) for a in arguments)
    rows = REGO.eval_query(f"x := data.lib.sigwarden.{function}({args})").get("result") or []
    return rows[0]["bindings"]["x"] if rows else None


def holds(function: str, *arguments: Any) -> bool:
    return call(function, *arguments) is True


def spec(containers: list[str] = (), init: list[str] = (), ephemeral: list[str] = (),
         volumes: list[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": x} for i, x in enumerate(containers)],
            "initContainers": [{"name": f"i{i}", "image": x} for i, x in enumerate(init)],
            "ephemeralContainers": [{"name": f"e{i}", "image": x} for i, x in enumerate(ephemeral)],
            "volumes": list(volumes)}


def pod(pod_spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **metadata}, "spec": pod_spec}


def workload(kind: str, pod_spec: dict[str, Any], replicas: int = 1) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec}
    if kind == "CronJob":
        return {"kind": kind, "metadata": {"name": "w"}, "spec": {"jobTemplate": {"spec": {"template": template}}}}
    return {"kind": kind, "metadata": {"name": "w"}, "spec": {"replicas": replicas, "template": template}}


def image_volume(reference: Any) -> dict[str, Any]:
    return {"name": "v", "image": {"reference": reference, "pullPolicy": "IfNotPresent"}}


# --- images of an object -------------------------------------------------------------------------------------

EVERY_LIST = spec(["app:1"], ["init:1"], ["debug:1"], [image_volume("models:1"), {"name": "e", "emptyDir": {}}])


@pytest.mark.parametrize("obj", [
    pod(EVERY_LIST),
    *(workload(kind, EVERY_LIST) for kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                                              "ReplicationController", "CronJob")),
], ids=lambda o: o["kind"])
def test_images_of_every_pod_spec_include_every_list_and_image_volumes(obj: dict[str, Any]) -> None:
    # policy-controller pkg/webhook/validator.go validatePodSpec: checkContainers (containers, initContainers),
    # checkEphemeralContainers, checkVolumeImages (spec.volumes[].image.reference, KEP-4639).
    assert sorted(call("objects.images", obj)) == ["app:1", "debug:1", "init:1", "models:1"]


def test_blank_images_are_placeholders_not_images() -> None:
    # kubernetes pkg/apis/core/validation validateContainersOnlyForPod refuses a Pod image with surrounding
    # blanks, so `image: " "` in a pod template never runs; policy-controller checkVolumeImages skips an
    # image volume whose reference is empty.
    obj = workload("Deployment", spec(["app:1", " ", ""], volumes=[image_volume(""), image_volume("\t")]))
    assert sorted(call("objects.images", obj)) == ["app:1"]


def test_kinds_without_a_pod_spec_have_no_images() -> None:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "w"}, "spec": {"replicas": 0}}
    assert not call("objects.images", scale)
    assert not call("objects.images", {"kind": "ConfigMap", "data": {"image": "x"}})


# --- which images a review decides ------------------------------------------------------------------------

SIGNED_ONLY = pod(spec(["app:1"]))
WITH_SIDECAR = pod(spec(["app:1", "sidecar:1"]))


@pytest.mark.parametrize(("review", "decided"), [
    # Gatekeeper's audit: no operation, every image of every object, terminating or not.
    ({"object": WITH_SIDECAR}, ["app:1", "sidecar:1"]),
    ({"object": pod(spec(["app:1"]), deletionTimestamp="2026-01-01T00:00:00Z")}, ["app:1"]),
    ({"operation": "CREATE", "object": WITH_SIDECAR}, ["app:1", "sidecar:1"]),
    # UPDATE decides only the images the object did not have.
    ({"operation": "UPDATE", "object": WITH_SIDECAR, "oldObject": SIGNED_ONLY}, ["sidecar:1"]),
    ({"operation": "UPDATE", "object": SIGNED_ONLY, "oldObject": WITH_SIDECAR}, []),
    ({"operation": "UPDATE", "object": workload("ReplicaSet", spec(["old:1"]), 0),
      "oldObject": workload("ReplicaSet", spec(["old:1"]), 3)}, []),
    ({"operation": "UPDATE", "subResource": "ephemeralcontainers",
      "object": pod(spec(["app:1"], ephemeral=["debug:1"])), "oldObject": SIGNED_ONLY}, ["debug:1"]),
    ({"operation": "UPDATE", "object": pod(spec(["app:1"], volumes=[image_volume("models:1")])),
      "oldObject": SIGNED_ONLY}, ["models:1"]),
    ({"operation": "UPDATE", "object": WITH_SIDECAR}, ["app:1", "sidecar:1"]),  # no oldObject: all of them
    # pkg/webhook/validator.go isDeletedOrStatusUpdate: never a DELETE, never an object being deleted.
    ({"operation": "DELETE", "object": WITH_SIDECAR, "oldObject": WITH_SIDECAR}, []),
    ({"operation": "UPDATE", "object": pod(spec(["new:1"]), deletionTimestamp="2026-01-01T00:00:00Z"),
      "oldObject": SIGNED_ONLY}, []),
], ids=lambda v: None if isinstance(v, dict) else str(v))
def test_review_images(review: dict[str, Any], decided: list[str]) -> None:
    assert sorted(call("objects.review_images", review)) == decided


# --- the keys sent ---------------------------------------------------------------------------------------

def test_one_key_per_normalised_reference() -> None:
    spellings = ["nginx", "docker.io/nginx", "index.docker.io/library/nginx:latest", "docker.io/library/nginx",
                 "Registry.Example:443/app:v1", "registry.example/app:v1", "registry.example:0443/app:v1"]
    assert call("answers.keys", spellings) == ["Registry.Example:443/app:v1", "docker.io/library/nginx"]
    key_of = call("answers.key_of", spellings)
    assert key_of["nginx"] == key_of["index.docker.io/library/nginx:latest"] == "docker.io/library/nginx"


def test_different_images_keep_their_own_keys() -> None:
    images = ["nginx:1", "nginx:2", f"nginx@{DIGEST}", f"nginx:1@{DIGEST}", "registry.example:70000/app",
              "REGISTRY.example:70000/app"]
    # A reference with no normal form (a port out of range) is its own key: the provider refuses each one.
    assert call("answers.keys", images) == sorted(images)
    assert sorted(call("answers.key_of", images)) == sorted(images)  # every image has a key: none goes unasked


# --- reading the answer --------------------------------------------------------------------------------------

def answer(responses: list[list[Any]] = (), errors: list[list[str]] = (), system_error: str = "",
           status: int = 200) -> dict[str, Any]:
    return {"responses": list(responses), "errors": list(errors), "system_error": system_error,
            "status_code": status}


@pytest.mark.parametrize(("response", "refused"), [
    (answer(system_error="REQUEST_REFUSED: request.keys has 2000 keys, more than the limit of 1024", status=400),
     True),
    (answer(system_error="REQUEST_REFUSED: request body is over the limit of 1048576 bytes", status=0), True),
    (answer(system_error="request.keys[0] is an empty string", status=400), True),  # another provider's 400
    (answer(system_error="request head is over the limit", status=431), True),
    (answer(system_error="failed to send external data request: connection refused", status=0), False),
    (answer(system_error="provider is starting: configuration not loaded yet", status=503), False),
    (answer(system_error="TIMEOUT: not finished in time, retry shortly: a", status=200), False),
])
def test_allow_on_error_never_covers_a_refused_request(response: dict[str, Any], refused: bool) -> None:
    assert holds("answers.refused", response) is refused
    assert holds("answers.excused_system_error", response, True) is not refused
    assert not holds("answers.excused_system_error", response, False)


def test_allow_on_error_never_covers_an_invalid_reference() -> None:
    assert holds("answers.excused_item_error", "REGISTRY_UNAVAILABLE: connection refused", True)
    assert holds("answers.excused_item_error", "NOT_FOUND: manifest unknown", True)
    assert not holds("answers.excused_item_error", "INVALID_REFERENCE: repository name must be lowercase", True)
    assert not holds("answers.excused_item_error", "NOT_FOUND: manifest unknown", False)


def test_a_key_sent_but_never_answered_is_unanswered() -> None:
    response = answer([["a:1", {"verified": True}]], [["b:1", "NOT_FOUND: no such tag"]])
    assert sorted(call("answers.unanswered", response, ["a:1", "b:1", "c:1"])) == ["c:1"]
    assert sorted(call("answers.unanswered", {**response, "responses": None, "errors": None}, ["a:1"])) == ["a:1"]
    # With a system error, the missing keys are that error's (allowOnError may cover an unavailable provider).
    assert not call("answers.unanswered", answer(system_error="TIMEOUT: not finished"), ["c:1"])


# --- exemptions ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "exempt"), [
    ("registry.example/team/app:v1", True),
    ("Registry.Example:443/team/app:v1", True),
    (f"registry.example/team/app:v1@{OTHER}", False),  # the runtime pulls the digest, not the exempted tag
    (f"registry.example/team/app@{OTHER}", False),
    ("registry.example/team/app:v2", False),
    ("registry.example/team/app", False),  # :latest
    (f"registry.example/team/db@{DIGEST}", True),
    (f"registry.example/team/db:v1@{DIGEST}", True),  # the same digest, whatever the tag says
    (f"registry.example/team/db@{OTHER}", False),
    ("registry.example/team/db:v1", False),
    ("registry.example/tools/debug:v1", True),  # a repository: any tag or digest
    (f"registry.example/tools/debug:v1@{OTHER}", True),
    (f"registry.example/tools/debug@{OTHER}", True),
])
def test_tag_exemptions_cover_the_tag_reference_only(image: str, exempt: bool) -> None:
    patterns = ["registry.example/team/app:v1", f"registry.example/team/db@{DIGEST}", "registry.example/tools/debug"]
    assert holds("images.exempt", image, patterns) is exempt
