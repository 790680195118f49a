"""The boto3 clients ocrlab makes (ocrlab.clients): every request names ocrlab in its User-Agent, the
same string each time (fixed once a client, not rebuilt a request), and is still signed."""
from __future__ import annotations

import io
from importlib import metadata
from typing import Any

from PIL import Image
from support.converse_server import ConverseServer

from ocrlab.ocr.engines import PreparedImage
from ocrlab.ocr.engines.bedrock import BedrockEngine
from ocrlab.store import open_store

AGENT = f"ocrlab/{metadata.version('ocrlab')} Botocore/"


def test_every_model_call_names_ocrlab_and_is_signed(dummy_credentials: None, converse_server: ConverseServer) -> None:
    engine = BedrockEngine(endpoint_url=converse_server.url, region="us-east-1", max_attempts=1)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, format="PNG")
    image = PreparedImage(data=buffer.getvalue(), format="png", width=40, height=20,
                          original_bytes=len(buffer.getvalue()), original_format="png")
    for _ in range(3):
        engine.run(image)
    agents = {r.headers["User-Agent"] for r in converse_server.requests}
    assert len(converse_server.requests) == 3 and len(agents) == 1, agents
    assert agents.pop().startswith(AGENT)
    assert all(r.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
               for r in converse_server.requests)


def test_every_store_request_names_ocrlab_and_is_signed(dynalite: Any, table_name: str) -> None:
    store = open_store(table_name)
    sent: list[dict[str, str]] = []  # the headers as they go on the wire
    store.store.client.meta.events.register("before-send.dynamodb", lambda request, **_: sent.append(
        {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}))
    store.writer.next_attempt("scans/a.png")
    store.image_records("scans/a.png")
    assert len(sent) >= 2
    assert {h["User-Agent"] for h in sent} == {sent[0]["User-Agent"]}
    assert sent[0]["User-Agent"].startswith(AGENT)
    assert all(h["Authorization"].startswith("AWS4-HMAC-SHA256") for h in sent)
