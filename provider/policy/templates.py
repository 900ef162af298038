"""Build Gatekeeper ConstraintTemplates from `policies/<name>/` (src.rego + meta.yaml) and the shared libs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TARGET = "admission.k8s.gatekeeper.sh"


def render_template(policy_dir: Path, lib_dir: Path) -> dict[str, Any]:
    """The ConstraintTemplate for one policy folder; libs are every `.rego` file of `lib_dir`."""
    meta = yaml.safe_load((policy_dir / "meta.yaml").read_text())
    rego = (policy_dir / "src.rego").read_text()
    libs = [path.read_text() for path in sorted(lib_dir.glob("*.rego"))]
    target: dict[str, Any] = {"target": TARGET, "rego": rego}
    if any(f"import data.lib.{_package(lib)}" in rego or f"data.{_package(lib, full=True)}" in rego
           for lib in libs):
        target["libs"] = libs
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": meta["kind"].lower(), "annotations": {
            "metadata.gatekeeper.sh/title": meta["title"], "description": meta["description"]}},
        "spec": {
            "crd": {"spec": {"names": {"kind": meta["kind"]}, "validation": {"openAPIV3Schema": {
                "type": "object", "properties": meta.get("parameters", {})}}}},
            "targets": [target],
        },
    }


def _package(rego: str, full: bool = False) -> str:
    line = next(line for line in rego.splitlines() if line.startswith("package "))
    name = line.split(None, 1)[1].strip()
    return name if full else name.removeprefix("lib.")


class _Literal(str):
    """A string dumped as a YAML literal block (keeps Rego readable in the template)."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def dump_template(template: dict[str, Any]) -> str:
    for target in template["spec"]["targets"]:
        target["rego"] = _Literal(target["rego"])
        if "libs" in target:
            target["libs"] = [_Literal(lib) for lib in target["libs"]]
    header = "# Generated from policies/ by scripts/build_templates.py; edit the policy, not this file.\n"
    return header + yaml.safe_dump(template, sort_keys=False, width=120)


def build_all(policies: Path, *outs: Path) -> list[Path]:
    """Write one template per policy folder (every folder with a meta.yaml) into each of `outs`."""
    written = []
    for policy_dir in sorted(p for p in policies.iterdir() if (p / "meta.yaml").exists()):
        text = dump_template(render_template(policy_dir, policies / "lib"))
        name = yaml.safe_load(text)["metadata"]["name"]
        for out in outs:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.yaml").write_text(text)
            written.append(out / f"{name}.yaml")
    return written
