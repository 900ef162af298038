"""Every audit renderer stays well-formed whatever the strings: control characters, lone surrogates,
noncharacters, markup and formulas from Pod specs or registry messages."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import provider.audit.html
from provider.audit.csv_report import HEADER, cell_text, csv_report
from provider.audit.html import render_html
from provider.audit.json_report import json_report
from provider.audit.junit import junit_xml
from provider.audit.model import (
    ConstraintInfo,
    Diff,
    Failure,
    ImageRow,
    ImageUse,
    Metadata,
    ReferenceCheck,
    Report,
    Result,
    Signer,
    Workload,
)
from provider.audit.objects import Container, ObjectRef
from provider.audit.printable import FORBIDDEN, printable

NASTY = ["\x00", "\x08", "\x0b", "\x1b", "\r", "\r\n", "\x7f", "\x85", "\ud800", "\udfff", "\ufffe", "\U0010ffff",
         "]]>", "<script>", "&amp;", "=cmd|' /C calc'!A0", '"', "\t", "-->"]
# Any code point, surrogates included (hypothesis leaves category Cs out unless told), plus the usual suspects.
hostile = st.lists(st.one_of(st.characters(blacklist_categories=()), st.sampled_from(NASTY)), max_size=20).map("".join)


def report_of(s: list[str]) -> Report:
    constraint = ConstraintInfo(s[0], s[1], "deny", ("deny",), ("deny",), parameters={"exemptImages": [s[2]]},
                                source=s[3])
    ref = ObjectRef("Deployment", s[4], s[5], "apps/v1")
    # An image volume (Kubernetes KEP-4639, spec.volumes[].image.reference) next to the container.
    failing = Workload(ref, objects=[s[6]], containers=[Container(s[7], s[8]), Container(s[20], s[21], volume=True)],
                       evaluated={constraint.id},
                       failures={constraint.id: Failure(constraint, [s[9], s[10]], {"sigwarden"})})
    skipped = Workload(ObjectRef("Pod", s[11], s[12]), containers=[Container("c", s[13])],
                       excluded={constraint.id: s[14]})
    image = ImageRow(s[8], s[15], [ReferenceCheck(s[8], "error", s[16])], {ref.id}, {s[4]}, {s[17]},
                     [Signer(s[17], "cosign", s[18], s[19], s[0])], {ImageUse(ref.id, s[7])})
    volume_image = ImageRow(s[21], "", [ReferenceCheck(s[21], "unverified", s[16])], {ref.id}, {s[4]},
                            uses={ImageUse(ref.id, s[20], volume=True)})
    authority = {"name": s[17], "kinds": [s[18]], "scopes": [s[19]]}
    inputs = [{"role": "manifests", "path": s[6]}]
    metadata = Metadata(s[1], s[2], {"fingerprint": s[3]}, [authority], [constraint], inputs,
                        [{"pattern": s[13], "source": s[14]}])
    result = Result(ref, ref, constraint, [s[9]], "sigwarden")
    diff = Diff(s[15], s[16], new_images=[s[8]], removed_workloads=[s[5]])
    return Report(metadata, [failing, skipped], [image, volume_image], [result], 2, 1, diff)


strings = st.lists(hostile, min_size=22, max_size=22)


@given(strings)
def test_junit_is_well_formed_xml(s: list[str]) -> None:
    report = report_of(s)
    document = junit_xml(report)
    root = ET.fromstring(document.encode("utf-8"))  # expat: a strict XML 1.0 parser
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    # What XML keeps of the message: its characters escaped, line ends normalised (XML 1.0 section 2.11).
    expected = printable("\n".join(s[9:11])).replace("\r\n", "\n").replace("\r", "\n")
    assert failure.text is not None and failure.text.replace("\r\n", "\n").replace("\r", "\n") == expected
    assert next(case.get("name") for case in root.iter("testcase")) == printable(report.workloads[0].ref.id)
    # The workload's images as properties: its container, then its image volume, named as such.
    names = [str(p.get("name")) for p in root.findall("testsuite/testcase[failure]/properties/property")]
    assert len(names) == 2 and names[0].startswith("container ") and names[1].startswith("image volume ")


TEMPLATE_TAGS = set(re.findall(r"<([a-z][a-z0-9]*)", Path(provider.audit.html.__file__).read_text()))


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@given(strings)
def test_html_carries_no_forbidden_character_and_no_markup_of_its_own(s: list[str]) -> None:
    document = render_html(report_of(s))
    document.encode("utf-8")  # a lone surrogate would raise here
    assert FORBIDDEN.search(document) is None
    parser = Tags()
    parser.feed(document)
    assert parser.tags <= TEMPLATE_TAGS, parser.tags - TEMPLATE_TAGS
    assert printable(s[9]).strip() in "".join(parser.text)
    assert "used by" in parser.text and " image volume " in "".join(parser.text)


@given(strings)
def test_csv_reads_back_to_the_same_rows(s: list[str]) -> None:
    report = report_of(s)
    document = csv_report(report)
    document.encode("utf-8")
    rows = list(csv.reader(io.StringIO(document, newline="")))
    assert rows[0] == list(HEADER) and len(rows) == 2
    assert rows[1][7] == cell_text("\n".join(s[9:11])) and rows[1][2] == cell_text(s[5])
    assert rows[1][HEADER.index("imageVolumes")] == cell_text(f"{s[20]}={s[21]}")
    assert not any(FORBIDDEN.search(cell) for cell in rows[1])


def paired(value: object) -> object:
    """A high surrogate followed by a low one, as JSON reads their escapes back: one character (RFC 8259, 7)."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if isinstance(value, dict):
        return {paired(k): paired(v) for k, v in value.items()}
    if isinstance(value, list):
        return [paired(v) for v in value]
    return value


@given(strings)
def test_json_reads_back_to_the_report(s: list[str]) -> None:
    report = report_of(s)
    document = json_report(report)
    assert document.isascii()
    assert json.loads(document) == paired(report.to_json())
    data = report.to_json()
    assert data["workloads"][0]["containers"][1] == {"name": s[20], "image": s[21], "imageVolume": True}
    assert data["images"][1]["usedBy"] == [{"workload": report.workloads[0].ref.id, "name": s[20],
                                            "imageVolume": True}]
