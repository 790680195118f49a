"""Settings: every environment variable ocrlab reads, in one documented object.

`settings()` reads the environment each time it is called (it is cheap), so a notebook or a test
that changes a variable sees the change. Nothing else in ocrlab reads `os.environ` for its own
variables; boto3 reads the standard AWS ones itself.

| variable | meaning | default |
| --- | --- | --- |
| OCRLAB_HOME | folder for local data: the dynalite data, the spool, demo files | `.ocrlab` in the project folder; `/tmp/ocrlab` in AWS Lambda |
| OCRLAB_STORE | `local` (dynalite), `aws` (DynamoDB) or `auto` | `auto`: aws when AWS is configured |
| OCRLAB_DB_PORT | port of the local dynalite | 8000 |
| OCRLAB_STORE_MAX_ATTEMPTS | DynamoDB calls per request, retries included | 5 |
| OCRLAB_CLOCK_SKEW | seconds the clocks of the hosts writing one table may differ by: a claim another host made is taken over only that long after its lease ran out by this host's clock | 120 |
| OCRLAB_TABLE (or DYNAMODB_TABLE) | the table every command uses unless `--table` | reading: the table the project last wrote (`ocrlab.table_choice`), else `ocrlab`; writing: `ocrlab` |
| OCRLAB_VERSION_FILE | the version stamp file | `OCR_VERSION.txt` of the project folder |
| OCRLAB_OCR_VERSION, OCRLAB_OCR_BUILD_DATE, OCRLAB_OCR_DESCRIPTION | the version stamp itself, instead of a file (the Lambda function's) | unset: from the file |
| OCRLAB_NOTEBOOKS | folder of notebooks for `ocrlab report` | the project's `notebooks/` |
| OCRLAB_REPORTS_DIR | where reports are written | the project's `reports/` |
| OCRLAB_CACHE (or XDG_CACHE_HOME) | where dynalite is installed (once) | `~/.cache` |
| OCRLAB_ENGINE_THREADS | onnxruntime threads of one local engine | all cores |
| OCRLAB_BEDROCK_MODEL_ID | the Bedrock model | `amazon.nova-lite-v1:0` |
| OCRLAB_BEDROCK_ANSWER_PATH | `tool` (structured output) or `text` (JSON in prose) | `tool` |
| OCRLAB_BEDROCK_PROMPT | a packaged prompt by name (`ocrlab/prompts/NAME.txt`) | the answer path's own |
| OCRLAB_ENGINE | the Lambda handler's engine | `bedrock` |
| OCRLAB_METRICS_NAMESPACE | CloudWatch namespace of the handler's metrics | `ocrlab` |

AWS counts as configured when OCRLAB_STORE=aws, or AWS_ENDPOINT_URL_DYNAMODB (or
AWS_ENDPOINT_URL), AWS_PROFILE or AWS_ACCESS_KEY_ID is set. AWS Lambda is recognised by
AWS_LAMBDA_FUNCTION_NAME: there the only writable folder is /tmp.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ocrlab.errors import OcrlabError

DEFAULT_TABLE = "ocrlab"
DEMO_TABLE = "ocrlab-demo"
DEFAULT_PORT = 8000
LOCAL_REGION = "us-east-1"
STORE_CHOICES = ("auto", "local", "aws")
LAMBDA_HOME = Path("/tmp/ocrlab")
# The version stamp's fields, when the environment gives it instead of a file.
STAMP_VARIABLES = {"version": "OCRLAB_OCR_VERSION", "build_date": "OCRLAB_OCR_BUILD_DATE",
                   "description": "OCRLAB_OCR_DESCRIPTION"}


def find_upward(*names: str, start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` (the working directory) holding any of `names`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / name).exists() for name in names):
            return folder
    return None


def project_dir() -> Path:
    """The nearest folder at or above the working directory holding OCR_VERSION.txt or .ocrlab.

    Notebook kernels start in notebooks/; this keeps them on the project's data, not a second copy.
    """
    return find_upward("OCR_VERSION.txt", ".ocrlab") or Path.cwd().resolve()


def in_project(path: str | os.PathLike[str] | None) -> Path | None:
    """A path as a notebook parameter means it: relative to the project folder, wherever the kernel runs.

    JupyterLab starts a notebook's kernel in notebooks/, papermill in the caller's folder; a `source`
    of `scans/` must mean the same folder from both. `~` is expanded; None stays None.
    """
    if path is None or str(path) == "":
        return None
    given = Path(path).expanduser()
    return given if given.is_absolute() else project_dir() / given


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise OcrlabError(f"{name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise OcrlabError(f"{name}={value} is out of range ({low} to {high})")
    return value


@dataclass(frozen=True)
class StoreTarget:
    """Where records go. `local` means the embedded dynalite that ocrlab starts on demand."""

    kind: str                    # "local" or "aws"
    endpoint_url: str | None
    region: str
    home: Path

    def describe(self, table: str | None) -> str:
        """The store and table in one line; table None: the one a notebook chooses itself."""
        named = repr(table) if table is not None else "chosen by the notebook (the project's)"
        if self.kind == "local":
            return f"store: local dynalite {self.endpoint_url}, table {named}, data in {self.home / 'dynamodb'}"
        return f"store: {self.endpoint_url or f'DynamoDB {self.region}'}, table {named}"


@dataclass(frozen=True)
class Settings:
    home: Path
    store: str
    db_port: int
    store_max_attempts: int
    clock_skew: float  # how far apart the clocks of the hosts writing one table may be, in seconds
    table: str
    table_named: bool            # OCRLAB_TABLE (or DYNAMODB_TABLE) set: every command uses it
    version_file: Path | None
    notebooks_dir: Path | None
    reports_dir: Path | None
    cache_dir: Path
    engine_threads: int
    bedrock_model_id: str | None
    bedrock_answer_path: str
    bedrock_prompt: str | None
    handler_engine: str
    metrics_namespace: str
    version_stamp: dict[str, str] | None
    aws_endpoint: str | None
    aws_configured: bool
    aws_region: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store = env.get("OCRLAB_STORE", "auto").lower() or "auto"
        if store not in STORE_CHOICES:
            raise OcrlabError(f"OCRLAB_STORE={store!r}: choose one of {', '.join(STORE_CHOICES)}")
        endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None
        path = lambda name: Path(env[name]) if env.get(name) else None  # noqa: E731
        return cls(
            home=Path(env["OCRLAB_HOME"]).resolve() if env.get("OCRLAB_HOME") else _default_home(env),
            store=store,
            db_port=_int(env, "OCRLAB_DB_PORT", DEFAULT_PORT, 1, 65535),
            store_max_attempts=_int(env, "OCRLAB_STORE_MAX_ATTEMPTS", 5, 1, 100),
            clock_skew=_int(env, "OCRLAB_CLOCK_SKEW", 120, 0, 86400),
            table=env.get("OCRLAB_TABLE") or env.get("DYNAMODB_TABLE") or DEFAULT_TABLE,
            table_named=bool(env.get("OCRLAB_TABLE") or env.get("DYNAMODB_TABLE")),
            version_file=path("OCRLAB_VERSION_FILE"),
            notebooks_dir=path("OCRLAB_NOTEBOOKS"),
            reports_dir=path("OCRLAB_REPORTS_DIR"),
            cache_dir=Path(env.get("OCRLAB_CACHE") or env.get("XDG_CACHE_HOME") or Path.home() / ".cache"),
            engine_threads=_int(env, "OCRLAB_ENGINE_THREADS", 0, 0, 1024),
            bedrock_model_id=env.get("OCRLAB_BEDROCK_MODEL_ID") or None,
            bedrock_answer_path=env.get("OCRLAB_BEDROCK_ANSWER_PATH") or "tool",
            bedrock_prompt=env.get("OCRLAB_BEDROCK_PROMPT") or None,
            handler_engine=env.get("OCRLAB_ENGINE") or "bedrock",
            metrics_namespace=env.get("OCRLAB_METRICS_NAMESPACE") or "ocrlab",
            version_stamp=({k: env.get(v, "").strip() for k, v in STAMP_VARIABLES.items()}
                           if any(env.get(v) for v in STAMP_VARIABLES.values()) else None),
            aws_endpoint=endpoint,
            aws_configured=bool(endpoint or env.get("AWS_PROFILE") or env.get("AWS_ACCESS_KEY_ID")),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or LOCAL_REGION,
        )

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def local_data_dir(self) -> Path:
        return self.home / "dynamodb"

    @property
    def demo_dir(self) -> Path:
        """`ocrlab demo`'s files: its samples and version stamps."""
        return self.home / "demo"

    def engine_defaults(self, engine: str) -> dict[str, Any]:
        """The options this environment gives `engine` (OCRLAB_BEDROCK_*, OCRLAB_ENGINE_THREADS): an
        edge adds them under the options it was given, so no engine reads the environment itself."""
        if engine == "bedrock":
            wanted = {"model_id": self.bedrock_model_id, "answer_path": self.bedrock_answer_path,
                      "prompt_name": self.bedrock_prompt}
            return {k: v for k, v in wanted.items() if v is not None}
        if engine == "rapidocr" and self.engine_threads > 0:
            return {"threads": self.engine_threads}
        return {}

    def store_target(self) -> StoreTarget:
        if self.store == "aws" or (self.store == "auto" and self.aws_configured):
            return StoreTarget("aws", self.aws_endpoint, self.aws_region, self.home)
        return StoreTarget("local", f"http://127.0.0.1:{self.db_port}", LOCAL_REGION, self.home)


def _default_home(env: Mapping[str, str]) -> Path:
    # In Lambda the code folder is read-only and /tmp is the only disk; elsewhere, the project's own folder.
    return LAMBDA_HOME if env.get("AWS_LAMBDA_FUNCTION_NAME") else project_dir() / ".ocrlab"


def settings() -> Settings:
    """The settings of the environment as it is now."""
    return Settings.from_env()
