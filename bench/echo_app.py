"""The baseline: a bare FastAPI endpoint that echoes its JSON body, served like the gateway."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> Any:
    return await request.json()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
