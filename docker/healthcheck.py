"""Container HEALTHCHECK: exit 0 when the server's liveness endpoint answers 200, else 1.

    python /opt/filters/healthcheck.py [PATH]

PATH defaults to /healthz (liveness: the process answers; models may still be loading). The
port is the server's own, from `FILTERS_PORT` (8000). Standard library only, so the image needs
no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(path: str = "/healthz", timeout_s: float = 3.0) -> int:
    """0 if GET http://127.0.0.1:$FILTERS_PORT{path} answers 200, else 1 (with the reason on stderr)."""
    url = f"http://127.0.0.1:{os.environ.get('FILTERS_PORT', '8000')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else "/healthz"))
