"""Running a batch on a Dask distributed cluster (`ocrlab batch --scheduler tcp://HOST:PORT`).

Each worker builds its own pipeline (engine, store client) the first time it sees the job and
writes its records itself; only small per-image reports travel back to the client. Workers
must reach the same store as the client (DynamoDB, or a shared dynalite via OCRLAB_DB_PORT).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from .errors import MissingDependency, OcrlabError

if TYPE_CHECKING:
    from .batch import Job
    from .sources import SourceItem


def run_on_dask(scheduler: str | Any, job: "Job", items: list["SourceItem"]) -> Iterator[dict[str, Any]]:
    """Yield per-image reports as workers finish them. `scheduler` is an address or a Client."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise MissingDependency("dask.distributed", "scale") from None
    from .batch import process_item
    own_client = not hasattr(scheduler, "submit")
    try:
        client = Client(scheduler, timeout="10s") if own_client else scheduler
    except (OSError, TimeoutError) as exc:
        raise OcrlabError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    try:
        # pure=False: a fresh key per call, since the same image may run again in a later batch.
        futures = [client.submit(process_item, job, item, pure=False) for item in items]
        for future in as_completed(futures):
            yield future.result()
    finally:
        if own_client:
            client.close()
