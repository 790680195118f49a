"""The modules that moved into packages, importable by their former names (code written against an
earlier ocrlab, a deployed function whose handler is `ocrlab.handler.lambda_handler`): a finder
that, asked for a former name, gives the module under its new one (the same module object).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    'ocrlab.answer_json': 'ocrlab.timesheet.answer_json',
    'ocrlab.answers': 'ocrlab.timesheet.answers',
    'ocrlab.batch': 'ocrlab.runs.batch',
    'ocrlab.compare': 'ocrlab.analysis.compare',
    'ocrlab.costs': 'ocrlab.analysis.costs',
    'ocrlab.engines': 'ocrlab.ocr.engines',
    'ocrlab.evaluate': 'ocrlab.evaluation.evaluate',
    'ocrlab.failure_detail': 'ocrlab.analysis.failure_detail',
    'ocrlab.fields': 'ocrlab.evaluation.fields',
    'ocrlab.frames': 'ocrlab.analysis.frames',
    'ocrlab.handler': 'ocrlab.aws.handler',
    'ocrlab.lambda_events': 'ocrlab.aws.events',
    'ocrlab.lambda_quota': 'ocrlab.aws.quota',
    'ocrlab.metrics': 'ocrlab.aws.metrics',
    'ocrlab.ocr_text': 'ocrlab.timesheet.ocr_text',
    'ocrlab.outcomes': 'ocrlab.analysis.outcomes',
    'ocrlab.pipeline': 'ocrlab.ocr.pipeline',
    'ocrlab.preflight': 'ocrlab.ocr.preflight',
    'ocrlab.preprocess': 'ocrlab.ocr.preprocess',
    'ocrlab.repairs': 'ocrlab.timesheet.repairs',
    'ocrlab.reports.browser': 'ocrlab.widgets.browser',
    'ocrlab.reports.widgets': 'ocrlab.widgets.export',
    'ocrlab.row_reader': 'ocrlab.timesheet.row_reader',
    'ocrlab.sample_fonts': 'ocrlab.samples.fonts',
    'ocrlab.scan_damage': 'ocrlab.samples.damage',
    'ocrlab.schema': 'ocrlab.timesheet.schema',
    'ocrlab.sources': 'ocrlab.runs.sources',
    'ocrlab.text_reader': 'ocrlab.timesheet.text_reader',
    'ocrlab.values': 'ocrlab.timesheet.values',
}


def new_name(name: str) -> str | None:
    """The module's name now (a moved package's submodules moved with it); None if it did not move."""
    parts = name.split(".")
    for n in range(len(parts), 1, -1):
        head = ".".join(parts[:n])
        if head in MOVED:
            return MOVED[head] + name[len(head):]
    return None


class _Former(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if new_name(name) else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(str(new_name(spec.name)))

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module under its new name is loaded already


def install() -> None:
    # First: a stale file of a former name (an old install, another checkout) must not win.
    if not any(isinstance(f, _Former) for f in sys.meta_path):
        sys.meta_path.insert(0, _Former())
