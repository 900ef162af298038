"""Cluster objects as the audit reads them: their containers and images, and the workload each belongs to.

A workload is the top-level owner: a Pod owned by a ReplicaSet owned by a Deployment is the Deployment,
a Job's Pod under a CronJob is the CronJob. Owners are followed through `metadata.ownerReferences`
(by uid, else by kind, namespace and name); an owner missing from the input still names the workload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

POD_SPEC_PATHS = {"Pod": ("spec",), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
TEMPLATE_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")  # the order they start in


@dataclass(frozen=True, order=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str
    api_version: str = ""

    @property
    def id(self) -> str:
        """`Kind/namespace/name` (`Kind/name` when cluster-scoped): how reports and baselines name it."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def to_json(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}


def user_label(name: str, volume: bool) -> str:
    """How reports name what uses an image: `container NAME` or `image volume NAME`."""
    return f"{'image volume' if volume else 'container'} {name}"


@dataclass(frozen=True, slots=True)
class Container:
    """A container, or an image volume (`volume`: then `name` is the volume's): each runs or mounts one image."""

    name: str
    image: str
    volume: bool = False

    def to_json(self) -> dict[str, Any]:
        """`imageVolume` only on an image volume, so a container's entry reads as it always has."""
        return {"name": self.name, "image": self.image, **({"imageVolume": True} if self.volume else {})}


def object_ref(obj: Mapping[str, Any]) -> ObjectRef:
    metadata = obj.get("metadata") or {}
    return ObjectRef(str(obj.get("kind", "")), str(metadata.get("namespace", "") or ""),
                     str(metadata.get("name", "")), str(obj.get("apiVersion", "")))


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a Pod-bearing object (the same kinds the policies read), else None."""
    kind = obj.get("kind", "")
    path = POD_SPEC_PATHS.get(kind) or (("spec", "template", "spec") if kind in TEMPLATE_KINDS else None)
    if path is None:
        return None
    spec: Any = obj
    for part in path:
        spec = spec.get(part) if isinstance(spec, dict) else None
    return spec if isinstance(spec, dict) else None


def containers(obj: Mapping[str, Any]) -> list[Container]:
    spec = pod_spec(obj) or {}
    found = []
    for field_name in CONTAINER_FIELDS:
        entries = spec.get(field_name)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("image"), str) and entry["image"]:
                found.append(Container(str(entry.get("name", "")), entry["image"]))
    return found


def volume_images(obj: Mapping[str, Any]) -> list[Container]:
    """The object's image volumes (`spec.volumes[].image.reference`, KEP-4639), named by their volume."""
    volumes = (pod_spec(obj) or {}).get("volumes")
    found = []
    for volume in volumes if isinstance(volumes, list) else []:
        image = volume.get("image") if isinstance(volume, dict) else None
        reference = image.get("reference") if isinstance(image, dict) else None
        if isinstance(reference, str) and reference.strip():
            found.append(Container(str(volume.get("name", "")), reference, volume=True))
    return found


def image_users(obj: Mapping[str, Any]) -> list[Container]:
    """What runs or mounts an image in a Pod-bearing object, in spec order: containers, then image volumes."""
    return [*containers(obj), *volume_images(obj)]


def object_images(obj: Mapping[str, Any]) -> list[str]:
    """Every distinct image of a Pod-bearing object, in spec order: containers, then image volumes."""
    return list(dict.fromkeys(c.image for c in image_users(obj)))


class Ownership:
    """Climbs owner references to the top-level owner, over the objects given."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.by_uid: dict[str, Mapping[str, Any]] = {}
        self.by_name: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for obj in objects:
            ref, uid = object_ref(obj), (obj.get("metadata") or {}).get("uid")
            if uid:
                self.by_uid[str(uid)] = obj
            self.by_name[(ref.kind, ref.namespace, ref.name)] = obj

    def workload_of(self, obj: Mapping[str, Any]) -> ObjectRef:
        seen: set[ObjectRef] = set()
        current, ref = obj, object_ref(obj)
        while ref not in seen:  # owner cycles cannot happen in a cluster, but input is only a file
            seen.add(ref)
            owner = _controller(current)
            if owner is None:
                return ref
            found = self.by_uid.get(str(owner.get("uid", ""))) or self.by_name.get(
                (str(owner.get("kind", "")), ref.namespace, str(owner.get("name", ""))))
            if found is None:
                return ObjectRef(str(owner.get("kind", "")), ref.namespace, str(owner.get("name", "")),
                                 str(owner.get("apiVersion", "")))
            current, ref = found, object_ref(found)
        return ref


def _controller(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    owners = [o for o in (obj.get("metadata") or {}).get("ownerReferences") or [] if isinstance(o, dict)]
    return next((o for o in owners if o.get("controller")), owners[0] if owners else None)
