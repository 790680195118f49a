"""`make package`: the Lambda artefact holds the handler, what it imports on the Bedrock path and the
pinned dependencies, nothing optional; unpacked alone into a fresh virtual environment of the
runtime's Python, it imports the handler and runs an SQS event against the local servers."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from support.aws_shapes import emf_records, s3_event, sqs_event, sqs_message
from support.helpers import png

from deploy import package

OPTIONAL = ("rapidocr", "onnxruntime", "pandas", "matplotlib", "papermill", "nbformat", "dask", "cv2", "jinja2")


def runtime_python() -> str | None:
    """An interpreter of the runtime's version: on PATH, or one pyenv holds."""
    name = f"python{package.PYTHON_VERSION}"
    candidates = [shutil.which(name), *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{package.PYTHON_VERSION}.*/bin/{name}")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def artefact(tmp_path_factory) -> package.Report:
    return package.build(tmp_path_factory.mktemp("build") / "ocrlab-lambda.zip")


def test_the_handler_and_its_imports_without_the_optional_parts(artefact):
    names = zipfile.ZipFile(artefact.path).namelist()
    for needed in ["ocrlab/aws/handler.py", "ocrlab/aws/events.py", "ocrlab/aws/metrics.py", "ocrlab/ocr/engines/bedrock.py",
                   "ocrlab/store/dynamodb.py", "ocrlab/prompts/timesheet_tool_v1.txt", "ocrlab/prompts/timesheet_v1.txt",
                   "boto3/__init__.py", "PIL/__init__.py", "numpy/__init__.py", "json_repair/__init__.py"]:
        assert needed in names, needed
    for absent in ["ocrlab/cli.py", "ocrlab/ocr/engines/rapid.py", "ocrlab/analysis/patterns.py", "ocrlab/runs/batch.py",
                   "ocrlab/reports/__init__.py", "ocrlab/reports/templates/compare.html.j2"]:
        assert absent not in names, absent
    tops = {name.split("/")[0] for name in names}
    assert not tops & set(OPTIONAL) and not [n for n in names if "__pycache__" in n or n.startswith("bin/")]
    assert not [n for n in names if n.startswith(("notebooks/", "tests/", "deploy/"))]
    assert artefact.dependencies == package.read_lock()
    assert set(artefact.left_out) == {"cv2"}  # preprocessing's optional denoiser, off unless asked for


def test_size_is_reported_against_lambdas_limits(artefact):
    assert 0 < artefact.zipped < artefact.unzipped < package.UNZIPPED_LIMIT
    text = artefact.describe()
    assert "250.0 MB unzipped" in text and "50.0 MB zipped" in text and "left out: cv2" in text


def test_a_rebuild_is_the_same_zip(artefact, tmp_path):
    again = package.build(tmp_path / "again.zip")  # the dependencies come from build/cache this time
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(again.path) == digest(artefact.path)


def test_the_lock_covers_what_the_handler_imports(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("".join(line + "\n" for line in package.LOCK.read_text().splitlines() if "numpy" not in line))
    with pytest.raises(package.BuildError, match="lacks numpy.*--lock"):
        package.build(tmp_path / "x.zip", lock_file=lock)


def test_the_artefact_alone_runs_an_sqs_event(artefact, tmp_path, dynalite, store, s3_server, bucket,
                                              converse_server):
    python = runtime_python()
    if python is None:
        pytest.skip(f"no Python {package.PYTHON_VERSION} on this machine to match the Lambda runtime")
    task, venv = tmp_path / "task", tmp_path / "venv"
    zipfile.ZipFile(artefact.path).extractall(task)  # what Lambda unpacks into /var/task
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    client, name = bucket
    client.put_object(Bucket=name, Key="in/week 43.png", Body=png())
    client.put_object(Bucket=name, Key="in/broken.png", Body=b"\x89PNG\r\n\x1a\n cut short")
    good, broken = sqs_message(s3_event(name, "in/week 43.png")), sqs_message(s3_event(name, "in/broken.png"))

    script = ("import importlib.util, json, sys\n"
              "import ocrlab, ocrlab.aws.handler\n"
              f"assert ocrlab.__file__.startswith({str(task)!r}), ocrlab.__file__\n"
              f"print(json.dumps([m for m in {OPTIONAL!r} if importlib.util.find_spec(m)]))\n"
              "print(json.dumps(ocrlab.aws.handler.lambda_handler(json.loads(sys.argv[1]), None)))\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONPATH": str(task),
           "AWS_LAMBDA_FUNCTION_NAME": "ocrlab-test", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{dynalite.port}", "AWS_ENDPOINT_URL_S3": s3_server,
           "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url,
           "OCRLAB_STORE": "aws", "OCRLAB_TABLE": store.table, "OCRLAB_ENGINE": "bedrock",
           "OCRLAB_OCR_VERSION": "2.0.0", "OCRLAB_OCR_BUILD_DATE": "2025-10-25", "OCRLAB_OCR_DESCRIPTION": "deployed"}
    run = subprocess.run([str(venv / "bin" / "python"), "-c", script, json.dumps(sqs_event(good, broken))],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]

    lines = run.stdout.splitlines()
    assert json.loads(lines[0]) == []  # none of the optional packages can be imported
    response = json.loads(lines[-1])
    assert response["succeeded"] == 1 and response["batchItemFailures"] == [{"itemIdentifier": broken["messageId"]}]
    assert [r.get("FailureType", "ok") for r in emf_records(run.stdout)] == ["ok", "INPUT_ERROR"]
    [record] = store.image_records("in/week 43.png")
    assert record["RecordType"] == "OCR_RESULT" and record["OCRDescription"] == "deployed"
    assert len(converse_server.requests) == 1
    assert not Path("/tmp/ocrlab/spool", f"{store.table}.jsonl").exists()  # nothing had to be spooled
