"""Container health check: the service on this container's port returns 200 for GET /readyz.

/readyz (not /healthz) so that Compose's `condition: service_healthy` means "its
database and the services it needs answer". Uses only the standard library,
because the images have no curl.
"""

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3


def main() -> int:
    port = os.environ.get("TWITTER_PORT")
    if not port:
        print("healthcheck: TWITTER_PORT is not set", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"healthcheck: GET /readyz on port {port} failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
