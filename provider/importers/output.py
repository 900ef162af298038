"""Write a conversion: the config fragment and the Kubernetes objects in separate files, trust files, a report.

`config.yaml` goes to sigwarden (or is merged into its config), `kubernetes.yaml` to `kubectl apply`; they never
share a file, because one is read by the provider and the other by the API server.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from provider.importers.model import Conversion

CONFIG_FILE, KUBERNETES_FILE, REPORT_FILE = "config.yaml", "kubernetes.yaml", "migration-report.txt"


def report(conversion: Conversion) -> str:
    """The migration report: every source field, what it became, and what needs the user (marked `!!`)."""
    lines = [f"sigwarden import {conversion.origin}: migration report",
             "  ok = converted, !! = needs your attention before the cut-over", ""]
    for finding in conversion.findings:
        lines.append(f"{'!!' if finding.attention else 'ok'} {finding.source}\n     -> {finding.became}")
    todo = sum(f.attention for f in conversion.findings)
    lines += ["", f"source fields: {len(conversion.findings)}, needing attention: {todo}"]
    return "\n".join(lines) + "\n"


def _yaml(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=120)


def kubernetes_yaml(conversion: Conversion) -> str:
    return "".join(("---\n" if index else "") + _yaml(obj) for index, obj in enumerate(conversion.kubernetes))


def write(conversion: Conversion, directory: Path) -> list[Path]:
    """Write every output file under `directory` (created if needed); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, content in conversion.files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    outputs = {CONFIG_FILE: _yaml(conversion.config), KUBERNETES_FILE: kubernetes_yaml(conversion),
               REPORT_FILE: report(conversion)}
    for name, text in outputs.items():
        (directory / name).write_text(text)
        written.append(directory / name)
    return written


def stream(conversion: Conversion) -> str:
    """Everything on one stream (no trust files): the report as comments, the config, then the objects."""
    out = "".join(f"# {line}\n" if line else "#\n" for line in report(conversion).splitlines())
    out += "# Add to the sigwarden config:\n" + _yaml(conversion.config)
    return out + "".join("---\n" + _yaml(obj) for obj in conversion.kubernetes)
