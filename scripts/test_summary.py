"""Prints one closing line over several JUnit XML reports (pytest's, node's test runner's):
`N passed, N failed, N skipped`."""

import sys
import xml.etree.ElementTree as ET  # noqa: S405 - reads reports this run just wrote


def main(paths: list[str]) -> None:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for path in paths:
        try:
            root = ET.parse(path).getroot()  # noqa: S314
        except (OSError, ET.ParseError):
            print(f"summary: report {path} is missing or unreadable")
            totals["errors"] += 1
            continue
        suites = [suite for suite in root.iter("testsuite") if suite.get("tests") is not None]
        for suite in suites:
            for key in totals:
                totals[key] += int(suite.get(key, 0))
        if not suites:  # node writes bare test cases
            for case in root.iter("testcase"):
                totals["tests"] += 1
                totals["failures"] += case.find("failure") is not None
                totals["errors"] += case.find("error") is not None
                totals["skipped"] += case.find("skipped") is not None
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"total: {passed} passed, {failed} failed, {totals['skipped']} skipped")


if __name__ == "__main__":
    main(sys.argv[1:])
