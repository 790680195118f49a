"""run_report: papermill with a real python3 kernel, HTML without code, clear errors, typed parameters."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from ocrlab.errors import NotebookFailed, OcrlabError, ParameterError, UnknownName
from ocrlab.reports.notebooks import FIGURES_MIME, convert_parameters, recorded_figures, run_report, write_html

FIXTURES = Path(__file__).parent / "fixtures"
TYPED = FIXTURES / "typed_parameters.ipynb"
STAMP = r"\d{8}T\d{6}Z"


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory):
    """One kernel run shared by the tests below: every parameter given as a command-line string."""
    reports = tmp_path_factory.mktemp("reports")
    params = {"count": "5", "ratio": "2", "verbose": "true", "label": "<i>x</i>", "limit": "7", "note": "None"}
    return run_report("typed_parameters", params, reports_dir=reports, notebooks_dir=FIXTURES), reports


def test_string_parameters_take_the_defaults_types(typed_run):
    result, _ = typed_run
    assert result.figures["types"] == {"count": "int", "ratio": "float", "verbose": "bool", "label": "str",
                                       "limit": "int", "note": "NoneType"}
    assert (result.figures["count"], result.figures["ratio"], result.figures["verbose"]) == (5, 2.0, True)
    assert recorded_figures(result.ipynb_path) == result.figures


def test_html_report_hides_code_and_escapes(typed_run):
    result, reports = typed_run
    assert result.html_path.parent == reports and result.ipynb_path.parent == reports
    assert re.fullmatch(rf"typed_parameters-{STAMP}\.html", result.html_path.name)
    assert result.ipynb_path == result.html_path.with_suffix(".ipynb")
    page = result.html_path.read_text(encoding="utf-8")
    assert "code output" in page and "&lt;b&gt;code output&lt;/b&gt;" in page  # printed text, escaped
    assert "import ocrlab.reports" not in page and 'class="source' not in page  # no code input
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page  # parameter values escaped in the header
    # Inert and self-contained: the reports' CSP, no script, nothing fetched from anywhere.
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "https://" not in page and "http://" not in page
    assert "recorded figures" not in page  # the record cell is for tests, not readers

    shown = write_html(result.ipynb_path, reports / "with-code.html", show_code=True).read_text(encoding="utf-8")
    assert shown.count('class="source"') == 4  # 3 cells + injected parameters; never the record cell


def test_broken_notebook_names_the_cell_and_keeps_partial_output(tmp_path):
    with pytest.raises(NotebookFailed) as info:
        run_report(str(FIXTURES / "broken.ipynb"), {"divisor": "0"}, reports_dir=tmp_path)
    err = info.value
    # The third cell as stored; In [4] because papermill ran the injected parameters as In [3].
    assert isinstance(err, OcrlabError) and err.cell == 3 and err.execution_count == 4
    message = str(err)
    assert "cell 3 (In [4])" in message and "ZeroDivisionError: division by zero" in message
    assert "share = total / divisor" in message and "\n" not in message
    assert err.ipynb_path.exists() and err.html_path is not None and err.html_path.exists()
    assert str(err.html_path) in message
    executed = nbformat.read(err.ipynb_path, as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for c in executed.cells for o in c.get("outputs", []))
    assert "ZeroDivisionError" in err.html_path.read_text(encoding="utf-8")


def test_parameter_conversion_errors():
    assert convert_parameters(TYPED, {"verbose": "no", "limit": "null", "count": 3}) == \
        {"verbose": False, "limit": None, "count": 3}
    # A str default keeps "None" as text; an unannotated None default keeps other strings as given.
    assert convert_parameters(TYPED, {"label": "None", "note": "2.0.0-2025-10-25"}) == \
        {"label": "None", "note": "2.0.0-2025-10-25"}
    with pytest.raises(ParameterError, match=r"'count' takes int \(default 2\), got 'many'"):
        convert_parameters(TYPED, {"count": "many"})
    with pytest.raises(ParameterError, match=r"no parameter 'colour'.*count, ratio, verbose, label, limit, note"):
        convert_parameters(TYPED, {"colour": "red"})
    with pytest.raises(ParameterError, match="'verbose' takes bool"):
        convert_parameters(TYPED, {"verbose": "maybe"})


def test_unknown_notebook_lists_what_exists(tmp_path):
    with pytest.raises(UnknownName, match=r"unknown notebook .*'nope'.*broken, compare_versions.*typed_parameters"):
        run_report("nope", {}, reports_dir=tmp_path, notebooks_dir=FIXTURES)
    assert list(tmp_path.iterdir()) == []


def test_recorded_figures_later_records_win():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("") for _ in range(2)])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={FIGURES_MIME: {"a": 1, "b": 1}})]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={FIGURES_MIME: {"b": 2}})]
    assert recorded_figures(nb) == {"a": 1, "b": 2}


def test_a_project_notebook_overrides_the_packaged_one_by_name(tmp_path, monkeypatch):
    from ocrlab.errors import UnknownName
    from ocrlab.reports.notebooks import find_notebook, packaged_notebooks_dir
    monkeypatch.delenv("OCRLAB_NOTEBOOKS", raising=False)
    monkeypatch.chdir(tmp_path)
    packaged = packaged_notebooks_dir()
    assert find_notebook("failure_patterns") == packaged / "failure_patterns.ipynb"
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "failure_patterns.ipynb").write_text((FIXTURES / "broken.ipynb").read_text())
    (tmp_path / "notebooks" / "ours.ipynb").write_text((FIXTURES / "broken.ipynb").read_text())
    assert find_notebook("failure_patterns") == tmp_path / "notebooks" / "failure_patterns.ipynb"
    assert find_notebook("export_failures") == packaged / "export_failures.ipynb"
    with pytest.raises(UnknownName, match="choose one of: .*failure_patterns.*ours"):
        find_notebook("nope")
