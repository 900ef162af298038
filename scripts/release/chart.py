"""The Helm chart as Helm pushes it to an OCI registry: a `.tgz` layer and Chart.yaml as the JSON config."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.release.archives import Entry, gzip_bytes, tar_bytes

# Helm's OCI media types (helm.sh/helm/v3 pkg/registry: ConfigMediaType, ChartLayerMediaType).
CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass(frozen=True)
class PackagedChart:
    name: str
    version: str
    archive: bytes
    config: bytes

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tgz"


def _ignored(relative: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative.rsplit("/", 1)[-1], p) for p in patterns)


def package(chart_dir: Path, epoch: int) -> PackagedChart:
    """`helm package` of `chart_dir` in a fixed form: members under `<name>/`, .helmignore honoured."""
    metadata = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    ignore_file = chart_dir / ".helmignore"
    patterns = [line.strip() for line in ignore_file.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if ignore_file.exists() else []
    name = metadata["name"]
    entries = []
    for path in chart_dir.rglob("*"):
        relative = path.relative_to(chart_dir).as_posix()
        if path.is_file() and not _ignored(relative, patterns) and relative != ".helmignore":
            entries.append(Entry(f"{name}/{relative}", path.read_bytes()))
    config = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    return PackagedChart(name, str(metadata["version"]), gzip_bytes(tar_bytes(entries, epoch)), config)
