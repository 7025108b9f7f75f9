"""Prints one closing line over several pytest JUnit XML reports: `N passed, N failed, N skipped`."""

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
        for suite in root.iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"total: {passed} passed, {failed} failed, {totals['skipped']} skipped")


if __name__ == "__main__":
    main(sys.argv[1:])
