"""Engines behind one interface, chosen by name."""
from __future__ import annotations

from importlib import import_module
from inspect import signature
from typing import Any

from ocrlab.errors import OcrlabError, UnknownName
from ocrlab.ocr.engines.base import Engine, EngineResult, ImageLimits, PreparedImage

# name -> "module:Class", imported on first use so optional engines cost nothing until chosen.
REGISTRY: dict[str, str] = {
    "rapidocr": "ocrlab.ocr.engines.rapid:RapidOCREngine",
    "tesseract": "ocrlab.ocr.engines.tesseract:TesseractEngine",
    "bedrock": "ocrlab.ocr.engines.bedrock:BedrockEngine",
}


def takes(name: str, option: str) -> bool:
    """Whether the engine `name` has the constructor option `option` (worker settings go to those that do)."""
    module, cls = REGISTRY[name].split(":")
    return option in signature(getattr(import_module(module), cls)).parameters


def get_engine(name: str, **options: Any) -> Engine:
    """An engine instance by registry name; unknown names list what exists."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UnknownName("engine", name, list(REGISTRY)) from None
    module, cls = target.split(":")
    engine_cls = getattr(import_module(module), cls)
    try:
        signature(engine_cls).bind(**options)
    except TypeError as exc:  # a wrong --engine-option is the user's to fix, not a traceback
        raise OcrlabError(f"engine {name!r}: {exc}") from None
    try:
        return engine_cls(**options)
    except OcrlabError:
        raise
    except (TypeError, ValueError, OSError) as exc:  # a value the engine (or boto3) cannot take
        raise OcrlabError(f"engine {name!r}: {type(exc).__name__}: {exc}") from None


__all__ = ["Engine", "EngineResult", "ImageLimits", "PreparedImage", "REGISTRY", "get_engine"]
