"""JUnit XML for CI: one test suite per constraint with one test case per workload it evaluated, and a suite
of skipped cases for the workloads nothing evaluated (with the reason). Each case lists the workload's images as
properties named after the container or image volume. Characters XML 1.0 forbids (a control
character in an image string or a registry message) are written as visible escapes, so the file always parses."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provider.audit.model import Report, Workload
from provider.audit.objects import user_label
from provider.audit.printable import printable


def junit_xml(report: Report) -> str:
    suites = ET.Element("testsuites", name="sigwarden audit")
    tests = failures = 0
    for constraint in sorted({c.id: c for c in report.metadata.constraints}.values(), key=lambda c: c.id):
        evaluated = [w for w in report.workloads if constraint.id in w.evaluated]
        failed = [w for w in evaluated if constraint.id in w.failures]
        suite = ET.SubElement(suites, "testsuite", name=constraint.id, tests=str(len(evaluated)),
                              failures=str(len(failed)))
        for workload in evaluated:
            case = ET.SubElement(suite, "testcase", classname=constraint.id.replace("/", "."), name=workload.ref.id)
            _images(case, workload)
            failure = workload.failures.get(constraint.id)
            if failure is not None:
                text = "\n".join(failure.messages)
                ET.SubElement(case, "failure", type=constraint.enforcement_action,
                              message="; ".join(failure.messages)[:1000]).text = text
        tests, failures = tests + len(evaluated), failures + len(failed)
    skipped = report.not_evaluated
    if skipped:
        suite = ET.SubElement(suites, "testsuite", name="not evaluated", tests=str(len(skipped)),
                              skipped=str(len(skipped)))
        for workload in skipped:
            case = ET.SubElement(suite, "testcase", classname="notEvaluated", name=workload.ref.id)
            _images(case, workload)
            ET.SubElement(case, "skipped", message="; ".join(workload.not_evaluated_reasons)[:1000])
    suites.set("tests", str(tests + len(skipped)))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + printable(ET.tostring(suites, encoding="unicode")) + "\n"


def _images(case: ET.Element, workload: Workload) -> None:
    """The workload's images as test case properties, one per container or image volume (`image volume NAME`)."""
    if workload.containers:
        properties = ET.SubElement(case, "properties")
        for container in workload.containers:
            ET.SubElement(properties, "property", name=user_label(container.name, container.volume),
                          value=container.image)
