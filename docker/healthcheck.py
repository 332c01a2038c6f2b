"""Container health check: GET /health on the local server answers 200 (no curl in the image)."""

import os
import sys
import urllib.request

port = os.environ.get("GATEWAY_PORT", "8080")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as reply:
        sys.exit(0 if reply.status == 200 else 1)
except Exception:
    sys.exit(1)
