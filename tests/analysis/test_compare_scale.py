"""The comparison at scale, on a history seeded into dynalite in the store's layout (benchmarks.history):
what the page shows and lists, what is read, the JSON, and tables written before records had digests."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from benchmarks.history import V2, V3, Plan, records
from benchmarks.seed import write_items
from ocrlab.analysis.compare import compare_versions
from ocrlab.records import DIGESTS
from ocrlab.reports.comparison import comparison_files, render_comparison_html, write_comparison_json

PLAN = Plan(regressed=12, fixed=30, other_ok=45, other_failed=9, unchanged=20, failures=200, results=200)
SHOWN, LINES = 5, 20


@pytest.fixture
def history(store):
    write_items(store, records(PLAN), versions=())
    return store


def _calls(store, operation: str) -> list[dict]:
    """The parameters of every `operation` the store's client sends from now on."""
    seen: list[dict] = []
    store.store.client.meta.events.register(f"provide-client-params.dynamodb.{operation}",
                                            lambda params, **_: seen.append(params))
    return seen


def test_page_shows_every_regression_and_at_most_the_configured_diffs(history, tmp_path):
    gets = _calls(history, "BatchGetItem")
    c = compare_versions(history, V2, V3, shown=SHOWN)
    assert c.counts["regressed"] == PLAN.regressed and c.outcomes["fixed"] == PLAN.fixed
    sections = c.sections()
    assert [len(sections[g].shown) for g in ("regressed", "improved", "other")] == [PLAN.regressed, SHOWN, SHOWN]

    # Texts are read by key for the images shown in full, and only for them; only those get a CER.
    shown = {i.image_key for g in ("regressed", "improved", "other") for i in sections[g].shown}
    asked = Counter(k["ImageKey"]["S"] for call in gets for k in call["RequestItems"][history.table]["Keys"])
    assert set(asked) == shown and set(asked.values()) == {2}  # base and candidate
    assert all("ProjectionExpression" in call["RequestItems"][history.table] for call in gets)
    assert {i.image_key for i in c.images if i.raw_cer is not None} == shown

    page = render_comparison_html(c, tmp_path / "compare.html", lines=LINES)
    html = page.read_text(encoding="utf-8")
    assert html.count('<section class="image status-broken') == PLAN.regressed
    assert html.count('<section class="image') == PLAN.regressed + 2 * SHOWN

    # Everything else that changed is listed one line each on list pages of at most LINES lines.
    files = comparison_files(page)
    assert files[0] == page and len(files) > 1
    lists = [f.read_text(encoding="utf-8") for f in files[1:]]
    lines = [re.findall(r'<tr class="status-(\w+)">', text) for text in lists]
    assert all(len(page_lines) <= LINES for page_lines in lines)
    listed = sum(len(page_lines) for page_lines in lines)
    changed = PLAN.changed
    assert listed + html.count('<section class="image') == changed
    assert all(f'href="{page.name}"' in text for text in lists)  # each list page leads back
    for name in (f.name for f in files[1:]):
        assert f'href="{name}"' in html

    # The counts add up to the total: shown + listed per group, groups + unchanged = every image.
    header = c.header()
    assert sum(header["counts"].values()) == header["images_total"] == PLAN.compared
    assert header["counts"]["unchanged"] == PLAN.unchanged and header["changed"] == changed
    groups = re.search(r'<table class="groups">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><td>(?:<a[^>]*>)?([^<]+)(?:</a>)?</td><td class=\"n\">([\d,]+)</td>", groups)
    assert sum(int(n.replace(",", "")) for _, n in rows) == PLAN.compared


def test_json_streams_one_image_per_line(history, tmp_path):
    c = compare_versions(history, V2, V3, shown=SHOWN)
    path = write_comparison_json(c, tmp_path / "c.json")
    text = path.read_text(encoding="utf-8")
    whole = json.loads(text)
    assert whole["images_total"] == PLAN.compared == len(whole["images"])
    lines = text.splitlines()
    assert len(lines) == PLAN.compared + 2  # the header line, one line per image, the closing line
    assert [json.loads(line.rstrip(","))["image_key"] for line in lines[1:-1]] == [i["image_key"] for i in
                                                                                   whole["images"]]
    assert whole["images"][0]["status"] == "broken" and whole["images"][0]["raw_cer"] is not None


def test_records_without_digests_compare_the_same(store):
    """A table written before records carried digests: they are read by key for them, and the comparison
    is the one of the same records with digests."""
    from ocrlab.store import open_store
    plan = Plan(regressed=2, fixed=3, other_ok=6, other_failed=2, unchanged=4, failures=20, results=20)
    write_items(store, ({k: v for k, v in r.items() if k not in DIGESTS.values()} for r in records(plan)), versions=())
    digested = open_store(f"{store.table}-digests")
    write_items(digested, records(plan), versions=())
    old, new = (compare_versions(s, V2, V3, shown=1) for s in (store, digested))
    assert old.header()["counts"] == {"regressed": 2, "improved": 3, "other": 8, "unchanged": 4, "new": 0, "not_run": 0}
    assert old.frame().equals(new.frame())


def test_list_pages_escape_text_from_images_and_models(store, tmp_path):
    from ocrlab.records import failure_item
    from ocrlab.version import OCRVersionInfo
    base, candidate = OCRVersionInfo("1.0.0", "2025-10-01", "b"), OCRVersionInfo("1.1.0", "2025-10-20", "c")
    key = "<script>alert(1)</script>.png"
    store.write(failure_item(key, "PARSING_ERROR", "x", base, {"error_code": "<b>E</b>", "raw_ocr_output": "a"}))
    store.write(failure_item(key, "PARSING_ERROR", "x", candidate, {"error_code": "<b>E</b>", "raw_ocr_output": "b"}))
    c = compare_versions(store, base.full_version, candidate.full_version, shown=0)
    page = render_comparison_html(c, tmp_path / "c.html")
    listed = comparison_files(page)[1].read_text(encoding="utf-8")
    assert "<script" not in listed and "<b>E" not in listed
    assert "&lt;script&gt;alert(1)&lt;/<wbr>script&gt;.<wbr>png" in listed and "&lt;b&gt;E&lt;/b&gt;" in listed
    assert 'http-equiv="Content-Security-Policy"' in listed
