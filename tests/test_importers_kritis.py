"""`sigwarden import kritis`: conversion, the lookaside requirement, duplicate names, and the output files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provider.cli import main
from provider.config import ConfigError, load_config
from provider.importers.kritis import KritisOptions, Source, convert, load
from tests.helpers import VECTORS, write_yaml

KRITIS = sorted((VECTORS / "kritis").glob("*.yaml"))


def test_kritis_examples_convert(tmp_path: Path) -> None:
    conversion = convert(load(KRITIS))
    constraint, content = conversion.kubernetes
    assert constraint["kind"] == "K8sSignedImages" and constraint["metadata"]["name"] == "my-gap"
    assert constraint["spec"]["parameters"] == {
        "authorities": ["kritis-authority"], "requireAll": True,
        "exemptImageNamePatterns": ["gcr.io/kritis_containers/*", "gcr.io/example-project/helloworld"],
        "breakglassAnnotation": "kritis.grafeas.io/breakglass"}
    assert conversion.authority_names() == ["test-attestor-1"]
    attention = [f"{f.source}: {f.became}" for f in conversion.findings if f.attention]
    assert any(line.startswith("ImageSecurityPolicy default/my-isp: (Grafeas): kritis read scan results from "
                               "Grafeas") for line in attention)
    # ImageSecurityPolicy: maximumSeverity is kritis' limit for fixable CVEs, maximumFixUnavailableSeverity
    # the one for unfixable CVEs; allowlisted Grafeas note names become CVE ids.
    assert content["kind"] == "K8sImageContent" and content["metadata"]["name"] == "my-isp"
    assert content["spec"]["match"]["namespaces"] == ["default"]
    assert content["spec"]["parameters"] == {
        "requireVulnerabilityReport": True, "maximumFixableSeverity": "HIGH", "maximumUnfixableSeverity": "ALLOW_ALL",
        "allowlistCVEs": ["CVE-2017-1000082", "CVE-2017-1000081"], "exemptImageNamePatterns": ["gcr.io/my/image"]}
    assert any("AttestationAuthority default/kritis-authority: the document has no public key (kritis kept its "
               "key pair in the Secret kritis-authority-key)" in line for line in attention)


def isp(requirements: dict) -> dict:
    return {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "ImageSecurityPolicy",
            "metadata": {"name": "isp", "namespace": "team"},
            "spec": {"packageVulnerabilityRequirements": requirements}}


def test_image_security_policy_defaults_and_block_all(tmp_path: Path) -> None:
    (defaults,) = convert([Source(isp({}), tmp_path / "isp.yaml")]).kubernetes
    assert defaults["spec"]["parameters"]["maximumFixableSeverity"] == "CRITICAL"
    assert defaults["spec"]["parameters"]["maximumUnfixableSeverity"] == "ALLOW_ALL"
    (strict,) = convert([Source(isp({"maximumSeverity": "BLOCK_ALL", "maximumFixUnavailableSeverity": "LOW"}),
                                tmp_path / "isp.yaml")]).kubernetes
    assert strict["spec"]["parameters"]["maximumFixableSeverity"] == "BLOCK_ALL"
    assert strict["spec"]["parameters"]["maximumUnfixableSeverity"] == "LOW"
    assert strict["spec"]["match"]["namespaces"] == ["team"]


def test_image_security_policy_with_an_unknown_severity_is_not_converted(tmp_path: Path) -> None:
    conversion = convert([Source(isp({"maximumSeverity": "SEVERE"}), tmp_path / "isp.yaml")])
    assert conversion.kubernetes == []
    (finding,) = [f for f in conversion.findings if f.attention]
    assert finding.source == "ImageSecurityPolicy team/isp: spec.packageVulnerabilityRequirements.maximumSeverity"
    assert "'SEVERE' is not a kritis severity" in finding.became


def test_gpg_authority_without_lookaside_fails_config_check_until_filled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The converted GPG authority gets a TODO lookaside; `config check` says what to add."""
    conversion = convert(load(KRITIS))
    lookaside = conversion.config["authorities"][0]["attestation"]["lookaside"]
    assert lookaside.startswith("TODO: attestation.lookaside of authority test-attestor-1")
    converted = write_yaml(tmp_path / "converted.yaml", conversion.config)
    assert main(["config", "check", "--for", "verify", str(converted)]) == 2
    err = capsys.readouterr().err
    assert ("authorities[0].attestation.lookaside: placeholder left by `sigwarden import`: fill in "
            "attestation.lookaside of authority test-attestor-1: the https://, http:// or file:// base where its "
            "GPG simple signatures are") in err
    # Deleting the placeholder instead of filling it is refused too, with the reason.
    del conversion.config["authorities"][0]["attestation"]["lookaside"]
    write_yaml(converted, conversion.config)
    with pytest.raises(ConfigError, match="lookaside: is required for PGP keys"):
        load_config(converted)
    filled = convert(load(KRITIS), KritisOptions(lookaside="https://sigstore.example/"))
    write_yaml(converted, filled.config)
    assert main(["config", "check", "--for", "verify", str(converted)]) == 0
    assert load_config(converted).authorities[0].attestation.lookaside == "https://sigstore.example/"


def authority_doc(name: str, namespace: str) -> dict:
    pem = (VECTORS / "containers-image/cosign.pub").read_text()
    return {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "AttestationAuthority",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"publicKeys": [{"keyType": "PKIX", "keyId": f"{namespace}-key",
                                     "pkixPublicKey": {"publicKeyPem": pem}}]}}


def policy_doc(namespace: str, authority: str) -> dict:
    return {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "GenericAttestationPolicy",
            "metadata": {"name": f"gap-{namespace}", "namespace": namespace},
            "spec": {"attestationAuthorityNames": [authority]}}


def test_duplicate_authority_names_across_namespaces_are_qualified_and_reported(tmp_path: Path) -> None:
    sources = [Source(d, tmp_path / "in.yaml") for d in (
        authority_doc("signer", "team-a"), authority_doc("signer", "team-b"), authority_doc("solo", "team-a"),
        policy_doc("team-a", "signer"), policy_doc("team-b", "signer"))]
    conversion = convert(sources)
    assert conversion.authority_names() == ["team-a-signer", "team-b-signer", "solo"]
    by_namespace = {c["spec"]["match"]["namespaces"][0]: c["spec"]["parameters"]["authorities"]
                    for c in conversion.kubernetes}
    assert by_namespace == {"team-a": ["team-a-signer"], "team-b": ["team-b-signer"]}
    warnings = [f.became for f in conversion.findings if f.attention]
    assert len(warnings) == 2 and "the name 'signer' is used in 2 namespaces" in warnings[0]
    # PKIX keys need no lookaside: the result loads as it is.
    assert len(load_config(write_yaml(tmp_path / "c.yaml", conversion.config)).authorities) == 3


def test_output_dir_keeps_config_and_kubernetes_objects_apart(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "src/keys/attestor.asc"
    key.parent.mkdir(parents=True)
    key.write_bytes((VECTORS / "containers-image/public-key.gpg").read_bytes())
    source = write_yaml(tmp_path / "src/kritis.yaml", {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "AttestationAuthority", "metadata": {"name": "gpg"},
         "spec": {"publicKeys": [{"keyType": "PGP", "file": "keys/attestor.asc"}]}},
        policy_doc("default", "gpg")]})
    out = tmp_path / "out"
    code = main(["import", "kritis", "--lookaside", "https://sigstore.example/", "-o", str(out), str(source)])
    assert code == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    objects = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    assert list(config) == ["authorities"]
    assert [o["kind"] for o in objects] == ["K8sSignedImages"]
    assert config["authorities"][0]["attestation"]["publicKeys"] == [{"keyType": "PGP", "file": "keys/gpg-0.asc"}]
    assert (out / "keys/gpg-0.asc").read_bytes() == key.read_bytes()
    assert "ok AttestationAuthority gpg: spec.publicKeys[0].file" in (out / "migration-report.txt").read_text()
    loaded = load_config(out / "config.yaml")
    assert loaded.authorities[0].attestation.keys[0].key_id == "08CD26E446E2E95249B7A405E932F44B23E8DD43"
    capsys.readouterr()
    # Key files cannot go to stdout: the user is told to pass a directory.
    assert main(["import", "kritis", str(source)]) == 2
    assert "pass --output-dir DIR" in capsys.readouterr().err


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write_yaml(tmp_path / "clean.yaml", authority_doc("pkix", "default"))
    assert main(["import", "kritis", "--check", str(clean)]) == 0
    assert capsys.readouterr().out.endswith("source fields: 1, needing attention: 0\n")
    assert main(["import", "kritis", "--check", str(VECTORS / "kritis")]) == 1
    report = capsys.readouterr().out
    assert "!! ImageSecurityPolicy default/my-isp" in report
    assert "!! AttestationAuthority test-attestor-1: (Grafeas)" in report


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [unclosed")
    for source in ("kritis", "ratify"):
        assert main(["import", source, "--check", str(tmp_path / "broken.yaml")]) == 2
        assert "broken.yaml: not valid YAML at line 1" in capsys.readouterr().err
        assert main(["import", source, "--check", str(tmp_path / "absent.yaml")]) == 2
        assert "absent.yaml: cannot read: No such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_key_files_outside_the_input_are_not_copied(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    where: str) -> None:
    """A tenant-written AttestationAuthority in a cluster dump must not pull the importer's files into the output."""
    secret = tmp_path / "home/.kube/config"
    secret.parent.mkdir(parents=True)
    secret.write_text("apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {token: s3cret}}]\n")
    dump = tmp_path / "dump"
    (dump / "keys").mkdir(parents=True)
    (dump / "keys/ok.asc").write_bytes((VECTORS / "containers-image/public-key.gpg").read_bytes())
    if where == "symlink":
        (dump / "keys/link.asc").symlink_to(secret)
    reference = {"absolute": str(secret), "dotdot": "../home/.kube/config", "symlink": "keys/link.asc"}[where]
    write_yaml(dump / "authorities.yaml", {
        "apiVersion": "kritis.grafeas.io/v1beta1", "kind": "AttestationAuthority", "metadata": {"name": "gpg"},
        "spec": {"publicKeys": [{"keyType": "PGP", "file": reference}, {"keyType": "PGP", "file": "keys/ok.asc"}]}})
    out = tmp_path / "out"
    assert main(["import", "kritis", "--check", "--lookaside", "https://sigstore.example/", str(dump)]) == 1
    report = capsys.readouterr().out
    assert (f"!! AttestationAuthority gpg: spec.publicKeys[0].file\n     -> {reference!r} is outside the input "
            "directory dump; key files are read only from there") in report
    assert main(["import", "kritis", "--lookaside", "https://sigstore.example/", "-o", str(out), str(dump)]) == 0
    copied = sorted(p.name for p in (out / "keys").iterdir())
    assert copied == ["gpg-1.asc"]
    assert not any(b"s3cret" in p.read_bytes() for p in out.rglob("*") if p.is_file())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["authorities"][0]["attestation"]["publicKeys"] == [{"keyType": "PGP", "file": "keys/gpg-1.asc"}]
