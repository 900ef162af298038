"""Config reloads that would silently drop protection are refused while the old config keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests
import yaml

from provider.devkit.fixtures import SIGNED, UNSIGNED, build_world
from provider.devkit.pki import issue
from provider.devkit.process import ProviderProcess
from tests.helpers import GATEKEEPER_NAME, ProviderPKI, metric_value, provider_request
from tests.integration.test_front_door import mtls_session, wait_for

Start = Callable[..., ProviderProcess]


def failures(provider: ProviderProcess) -> float:
    text = requests.get(provider.metrics_url + "/metrics", timeout=10).text
    return metric_value(text, "sigwarden_config_reloads_total", {"result": "failure"})


def test_empty_non_mapping_and_truncated_configs_are_refused_on_reload(start_provider: Start, pki: ProviderPKI,
                                                                       tmp_path: Path) -> None:
    world = build_world(tmp_path / "world")
    provider = start_provider(yaml.safe_load(world.config.read_text()), client_names=[GATEKEEPER_NAME])
    intruder = issue(pki.client_ca, "intruder.example", ("intruder.example",), client=True)
    intruder.write(tmp_path / "intruder", "client")
    intruder_pair = (str(tmp_path / "intruder/client.crt"), str(tmp_path / "intruder/client.key"))
    session = mtls_session(pki)

    def still_serving_the_old_config() -> None:
        items = session.post(provider.url + "/verify", json=provider_request([SIGNED, UNSIGNED]),
                             timeout=30).json()["response"]["items"]
        assert [item["value"]["verified"] for item in items] == [True, False]
        refused = requests.post(provider.url + "/verify", json=provider_request([SIGNED]), cert=intruder_pair,
                                verify=pki.path("ca.crt"), timeout=30)
        assert refused.status_code == 403 and "clientNames" in refused.json()["response"]["systemError"]

    still_serving_the_old_config()
    good = provider.config_path.read_text()
    server_only = yaml.safe_dump({"server": yaml.safe_load(good)["server"]})  # a write cut off after `server:`
    for count, (text, reason) in enumerate([("", "the config file is empty"),
                                            ("# nothing but a comment\n", "the config file is empty"),
                                            ("- a\n- list\n", "expected a mapping"),
                                            (server_only, "write `authorities: []`")], start=1):
        provider.config_path.write_text(text)
        wait_for(lambda count=count: failures(provider) >= count, f"reload failure {count}")
        assert reason in provider.log()
        still_serving_the_old_config()
    provider.config_path.write_text(good)
