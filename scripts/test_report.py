#!/usr/bin/env python3
"""test_report.py - the closing report of scripts/test.sh: one line per test of every run
(status, duration, run, name, and for a failure its first failure line), read from the JUnit
files ctest writes (--output-junit), then the totals.

  test_report.py RUN=FILE.xml [RUN=FILE.xml ...]

Exit status: 0 when every test of every run passed or was skipped, 1 when one failed or a file
is missing or unreadable (a run that wrote no report did not run), 2 on bad usage."""
import re
import sys
import xml.etree.ElementTree as ET

# The first line that says what went wrong, in order of how much it tells: a sanitizer's
# report, a unit CHECK, an integration test's FAIL/FATAL line, a fuzzer's crash, any "error".
FIRST_FAILURE = [
    re.compile(r"ERROR: (Address|Leak|Memory)Sanitizer.*|WARNING: ThreadSanitizer.*|"
               r".*runtime error:.*"),
    re.compile(r".*:\d+: .*failed.*"),
    re.compile(r".*\b(FAIL|FATAL): .*"),
    re.compile(r".*(==\d+==ERROR|deadly signal|Timeout|timed out).*", re.I),
    re.compile(r".*\berror\b.*", re.I),
]


def first_failure(text, message):
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for pattern in FIRST_FAILURE:
        for ln in lines:
            if pattern.fullmatch(ln):
                return ln[:200]
    return (message or (lines[-1] if lines else "failed, no output"))[:200]


def main(argv):
    if len(argv) < 2 or any("=" not in a for a in argv[1:]) or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr if len(argv) < 2 else sys.stdout)
        return 0 if argv[1:2] in (["-h"], ["--help"]) else 2
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    status = 0
    print("\n==== test report: status, seconds, run, test, first failure")
    for arg in argv[1:]:
        run, path = arg.split("=", 1)
        try:
            suite = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"FAIL      -  {run:5} (no report: {e})")
            counts["FAIL"] += 1
            status = 1
            continue
        for case in suite.iter("testcase"):
            out = case.findtext("system-out") or ""
            failure = case.find("failure")
            state = case.get("status", "")
            if failure is not None or state == "fail":
                verdict = "FAIL"
            elif case.find("skipped") is not None or state in ("notrun", "disabled"):
                verdict = "SKIP"
            else:
                verdict = "PASS"
            counts[verdict] += 1
            line = f"{verdict} {float(case.get('time', 0)):7.1f}  {run:5} {case.get('name')}"
            if verdict == "FAIL":
                status = 1
                msg = failure.get("message") if failure is not None else None
                line += f"  {first_failure(out, msg)}"
            print(line)
    print(f"==== {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
