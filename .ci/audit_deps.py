"""Dependency audit: pip-audit over the installed environment, against whichever vulnerability
database answers from here (OSV, else PyPI's per-release JSON).

    .venv/bin/python .ci/audit_deps.py            # exit 1 on any known vulnerability
    AUDIT_REQUIRED=1 .venv/bin/python .ci/audit_deps.py   # also exit 1 if nothing could be audited

An offline runner (only a PyPI mirror that serves no vulnerability data) cannot audit: that is
printed loudly and, unless AUDIT_REQUIRED=1, does not fail the build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

PROBES = {
    "osv": ("https://api.osv.dev/v1/query", b'{"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "20.0"}'),
    "pypi": ("https://pypi.org/pypi/pip/20.0/json", None),
}


def reachable(service: str) -> str | None:
    """None if the service answers a known query, else why not."""
    url, body = PROBES[service]
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (fixed https URLs)
            document = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {exc}"
    if service == "pypi" and "vulnerabilities" not in document:
        return f"{url}: answers without vulnerability data"
    return None


def main() -> int:
    required = os.environ.get("AUDIT_REQUIRED") == "1"
    reasons = {}
    for service in PROBES:
        reasons[service] = reachable(service)
        if reasons[service] is None:
            break
    else:
        print("pip-audit: NOT AUDITED: no vulnerability database is reachable from this machine:")
        for service, why in reasons.items():
            print(f"  {service}: {why}")
        return 1 if required else 0
    command = [sys.executable, "-m", "pip_audit", "--local", "--skip-editable", "--progress-spinner", "off"]
    command += ["--vulnerability-service", service, "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        report = json.loads(result.stdout)
    except ValueError:
        print(result.stdout + result.stderr)
        return 1
    audited = [d for d in report["dependencies"] if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    skipped = len(report["dependencies"]) - len(audited)
    print(f"pip-audit ({service}): {len(audited)} packages audited, {skipped} skipped")
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"  VULNERABLE {dep['name']} {dep['version']}: {ids}")
    if not audited:
        print("pip-audit: NOT AUDITED: the database knows none of the installed releases")
        return 1 if required else 0
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
