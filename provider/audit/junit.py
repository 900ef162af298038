"""JUnit XML for CI: one test suite per constraint, one test case per object and constraint."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def junit_xml(report: dict[str, Any]) -> str:
    suites = ET.Element("testsuites", name="sigwarden audit", tests=str(report["summary"]["evaluations"]),
                        failures=str(report["summary"]["nonCompliant"]))
    by_constraint: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in report["results"]:
        key = (result["constraint"]["kind"], result["constraint"]["name"])
        by_constraint.setdefault(key, []).append(result)
    for (kind, name), results in sorted(by_constraint.items()):
        suite = ET.SubElement(suites, "testsuite", name=f"{kind}/{name}", tests=str(len(results)),
                              failures=str(sum(not r["compliant"] for r in results)))
        for result in results:
            obj = result["object"]
            target = f"{obj['kind']}/{obj['namespace'] + '/' if obj['namespace'] else ''}{obj['name']}"
            case = ET.SubElement(suite, "testcase", classname=f"{kind}.{name}", name=target)
            if not result["compliant"]:
                action = result["constraint"]["enforcementAction"]
                failure = ET.SubElement(case, "failure", type=action, message="; ".join(result["messages"])[:1000])
                failure.text = "\n".join(result["messages"])
            ET.SubElement(case, "properties")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
