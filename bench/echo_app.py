"""The baseline: a bare FastAPI endpoint that echoes its JSON body, served exactly like the
gateway (``gateway serve``: one uvicorn process, the same HTTP protocol class, event loop and
log level), so the ratio gateway / echo measures the gateway's own work.

    python -m bench.echo_app --port 8099
"""

from __future__ import annotations

import argparse
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> Any:
    return await request.json()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    import uvicorn

    from gateway.api.http_protocol import TolerantHttpToolsProtocol

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, http=TolerantHttpToolsProtocol)


if __name__ == "__main__":
    main()
