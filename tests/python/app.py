"""A small FastAPI service using asgi-correlation-id, for interop tests.

GET /orders/{order_id}  answers with the correlation id it saw.
GET /call?url=URL       calls URL, passing its correlation id on as
                        X-Request-ID, and answers with both ids.

Each log line is one JSON object on stdout with the correlation id.
"""

import json
import logging
import sys

import httpx
from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from fastapi import FastAPI


class JsonLines(logging.Formatter):
    def format(self, record):
        return json.dumps(
            {
                "service": "python",
                "message": record.getMessage(),
                "request_id": correlation_id.get(),
            }
        )


handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(JsonLines())
log = logging.getLogger("interop")
log.addHandler(handler)
log.setLevel(logging.INFO)
log.propagate = False

app = FastAPI()
app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")


@app.get("/orders/{order_id}")
async def order(order_id: str):
    log.info("python handling order %s", order_id)
    return {"service": "python", "order_id": order_id, "request_id": correlation_id.get()}


@app.get("/call")
async def call(url: str):
    log.info("python calling %s", url)
    async with httpx.AsyncClient() as client:
        res = await client.get(url, headers={"X-Request-ID": correlation_id.get() or ""})
    return {
        "service": "python",
        "request_id": correlation_id.get(),
        "downstream_header": res.headers.get("x-request-id"),
        "downstream": res.json(),
    }
