"""Writes to the failure log: records numbered and written idempotently, and the claims that let
many runners (batches, their workers, Lambda invocations, on several hosts) take an image in turn.

The helper item `#COUNTER` of an image holds its failure count (an atomic update hands out
AttemptNumber, unique and consecutive with many writers and no transactions, which dynalite lacks),
the Sequence that orders its records, and, per version, the claim of the run processing it and what
its last run ended in. A write returns once the table holds the record; what to do when it cannot
(spool, dead-letter) is ocrlab.store.spooling's.
"""
from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any, Iterable, Iterator, Mapping

from botocore.exceptions import ClientError

from ocrlab.domain import Record
from ocrlab.errors import StoreUnavailable, TableMissing
from ocrlab.records import FAILED_IMAGE, OCR_RESULT, new_record_id, utc_timestamp
from ocrlab.store import admin
from ocrlab.store.claims import Claim, Moment, Unconfirmed, lease_end, owner_gone
from ocrlab.store.layout import SHARD_ATTRIBUTE
from ocrlab.store.reads import Queries
from ocrlab.store.shards import DEFAULT_SHARDS, shard_key
from ocrlab.store.table import COUNTER_KEY, deserialize, serialize


def _claim_names(version: str) -> dict[str, str]:
    """The claim (owner, lease, record) and how the last run ended: outcome, when (by the wall clock,
    for a Lambda event's time; by its machine's monotonic clock and boot, for a batch of the same
    machine), its Sequence (for a batch's plan) and the content it read."""
    return {"#o": f"ClaimOwner@{version}", "#e": f"ClaimExpires@{version}", "#r": f"ClaimRecord@{version}",
            "#d": f"LastRun@{version}", "#t": f"LastRunAt@{version}", "#m": f"LastRunClock@{version}",
            "#b": f"LastRunBoot@{version}", "#s": f"LastRunSequence@{version}", "#g": f"LastDigest@{version}"}


def _failure_names(version: str) -> dict[str, str]:
    """What a failing run leaves until its record is confirmed: the record's id and key, its numbers."""
    return {"#lr": f"LastRecord@{version}", "#lk": f"LastRecordAt@{version}", "#la": f"LastAttempt@{version}",
            "#lo": f"LastOwner@{version}", "#ls": f"LastSequence@{version}"}


def _fresh_terms(names: dict[str, str], values: dict[str, Any], used: dict[str, str], since: float | None,
                 began: Moment | None, seen: int | None) -> list[str]:
    """Conditions that no other run finished the image after the caller's run began (see Writer.claim)."""
    terms = []
    if since is not None:
        terms.append("(attribute_not_exists(#t) OR #t < :since)")
        values[":since"] = {"N": repr(since)}
        used["#t"] = names["#t"]
    if began is not None and began.boot != "?":
        terms.append("(attribute_not_exists(#m) OR #m < :began OR attribute_not_exists(#b) OR #b <> :boot)")
        values.update({":began": {"N": repr(began.clock)}, ":boot": {"S": began.boot}})
        used.update({"#m": names["#m"], "#b": names["#b"]})
    if seen is not None:
        terms.append("(attribute_not_exists(#s) OR #s <= :seen)")
        values[":seen"] = {"N": str(seen)}
        used["#s"] = names["#s"]
    return terms


def _other_digest(counter: Mapping[str, Any], version: str, digest: str | None) -> str | None:
    """The content the image's last run under the version read, if it is not `digest`."""
    last = counter.get(f"LastDigest@{version}")
    return str(last) if digest and last and last != digest else None


def _unconfirmed(item: Mapping[str, Any], version: str, lease_seconds: float) -> Unconfirmed | None:
    """The last run's failure, if that run is gone (its process, or its lease long past) and the
    failure was never confirmed written."""
    names = _failure_names(version)
    record, owner = item.get(names["#lr"]), item.get(names["#lo"])
    ended = float(item.get(f"LastRunAt@{version}", 0))
    if not record or not (owner_gone(str(owner)) or time.time() - ended > lease_seconds):
        return None
    sequence = item.get(names["#ls"])
    return Unconfirmed(str(record), str(item.get(names["#lk"], "")), int(item.get(names["#la"], 0)),
                       int(sequence) if sequence is not None else None)


class Writer:
    """The writes and claims of one table; reads what it must through `reads` (the same Table)."""

    def __init__(self, reads: Queries, clock_skew: float = 120.0) -> None:
        self.reads = reads
        self.db = reads.db
        # A lease's end is written by its claimer's clock: another host's claim counts as expired only
        # this much later by ours, so a claimer whose clock is behind is not overtaken while it works.
        self.clock_skew = clock_skew

    # -- writes -----------------------------------------------------------------------------
    def number(self, image_key: str, record_id: str, failure: bool, version: str = "") -> tuple[int | None, int]:
        """Number a record written without a claim: its Sequence and, for a failure, its AttemptNumber
        (one more failure of the image). Idempotent by record id: asked again for the same record (a
        replay killed between numbering and writing), it gives the same numbers and counts nothing;
        a failure its run already counted as it let go of its claim (the answer was lost: the store
        died) keeps the number counted then."""
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        names = {"#q": "Sequence", "#nr": "NumberedRecord", "#nq": "NumberedSequence"}
        values = {":rid": {"S": record_id}, ":one": {"N": "1"}, ":zero": {"N": "0"}}
        update = "SET #q = if_not_exists(#q, :zero) + :one, #nq = if_not_exists(#q, :zero) + :one, #nr = :rid"
        # Flat on purpose: `NOT a = :v` holds where `a` is missing, as `attribute_not_exists(a) OR a <>
        # :v` does, and the local database parses a nested condition many times slower.
        condition = "NOT #nr = :rid"
        released = _failure_names(version)
        if failure:
            self.reads.follow_writers(image_key)
            names.update({"#c": "FailureCount", "#na": "NumberedAttempt", "#lr": released["#lr"]})
            update += ", #c = if_not_exists(#c, :zero) + :one, #na = if_not_exists(#c, :zero) + :one"
            condition += " AND NOT #lr = :rid"
        try:
            out = self.db.call("update_item", TableName=self.db.table, Key=key, UpdateExpression=update,
                             ConditionExpression=condition, ExpressionAttributeNames=names,
                             ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")["Attributes"]
            numbers = deserialize(out)
        except ClientError:  # numbered (or counted at the release) before: the same numbers again
            counter = self.db.item(image_key, COUNTER_KEY) or {}
            if failure and counter.get(released["#lr"]) == record_id:
                sequence = counter.get(released["#ls"], counter.get("Sequence", 0))
                return int(counter.get(released["#la"], 0)), int(sequence)
            numbers = counter
        attempt = numbers.get("NumberedAttempt") if failure else None
        return (int(attempt) if attempt is not None else None), int(numbers.get("NumberedSequence", 0))

    def next_attempt(self, image_key: str) -> int:
        """Atomically count one more failure of the image; the new count is its AttemptNumber."""
        self.reads.follow_writers(image_key)
        out = self.db.call("update_item", TableName=self.db.table,
                         Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                         UpdateExpression="ADD #c :one", ExpressionAttributeNames={"#c": "FailureCount"},
                         ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
        return int(out["Attributes"]["FailureCount"]["N"])

    def put_record(self, item: Record, *, count_given_attempt: bool = False, replay: bool = False) -> Record:
        """Write a record under a timestamp unique for its image; idempotent by RecordId.

        A record without a Sequence (one written without a claim) is numbered from the image's
        counter; a failure without an AttemptNumber gets the next one; one that brings its own (a
        caller that numbers attempts itself) still counts, if `count_given_attempt`. The item comes
        storable (ocrlab.records builds every record so) and is completed in place, so a caller that
        must spool it after an error keeps the numbers already handed out. The item may carry a FailureTimestamp (a spooled record does); it
        moves forward by a microsecond only if another record of the image holds that exact time.
        With `replay`, a record found already written is not numbered again. A missing table is created.
        """
        item.setdefault("RecordId", new_record_id())
        item.setdefault("FailureTimestamp", utc_timestamp())
        try:
            self._put(item, count_given_attempt, replay)
        except TableMissing:  # the first write to a new table creates it
            admin.ensure_table(self.db)
            self._put(item, count_given_attempt, replay)
        return item

    def _put(self, item: Record, count_given_attempt: bool, replay: bool) -> None:
        # Everything that can fail goes before the record itself: an error then means "not written".
        self.db.register_version(item["OCRFullVersion"])
        if replay and self._written(item):
            return
        failed = item["RecordType"] == FAILED_IMAGE
        count = failed and (item.get("AttemptNumber") is None or count_given_attempt)
        if item.get("Sequence") is None or count:
            attempt, sequence = self.number(item["ImageKey"], item["RecordId"], count, item["OCRFullVersion"])
            item.setdefault("Sequence", Decimal(sequence))
            if failed and item.get("AttemptNumber") is None:
                item["AttemptNumber"] = Decimal(attempt or 0)
        shard = shard_key(item["RecordType"], item["ImageKey"], self.db.shards or DEFAULT_SHARDS)
        while True:
            try:
                self.db.call("put_item", TableName=self.db.table, Item=serialize({**item, SHARD_ATTRIBUTE: shard}),
                           ConditionExpression="attribute_not_exists(FailureTimestamp)")
                return
            except ClientError:
                if self._written(item):
                    return  # written before (a replay, or a retry whose answer was lost)
                item["FailureTimestamp"] = utc_timestamp(after=item["FailureTimestamp"])

    def _written(self, item: Record) -> bool:
        """Whether the record (by RecordId) is in the table: at its key, or (moved on a clash of
        timestamps by an earlier write) anywhere among the image's records."""
        held = self.reads.get(item["ImageKey"], item["FailureTimestamp"])
        if held is not None:
            if held.get("RecordId") == item["RecordId"]:
                return True
            return any(r.get("RecordId") == item["RecordId"] for r in self.reads.image_records(item["ImageKey"]))
        return False


    # -- claims ------------------------------------------------------------------------------
    def claim(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
              since: float | None = None, force: bool = False, *, began: Moment | None = None,
              seen: int | None = None, digest: str | None = None) -> Claim:
        """Claim the image under the version for `owner` and hand out its next Sequence, unless another
        run holds it (lease not expired, owner alive) or, without `force`, the image's last run under
        the version succeeded on the same content (`digest`; a last run that read other content makes
        this one a new revision) or another run finished it after the caller's run began: after the
        image's counter stood at `seen` (a batch reads the counters as it plans: no clock involved),
        after `began` (a run of the same machine, by its monotonic clock, which a wrong wall clock does
        not move), or after the moment `since` (a Lambda event's time, by the wall clock)."""
        names = {**_claim_names(version), "#q": "Sequence"}
        values = {":me": {"S": owner}, ":exp": {"N": str(lease_end(lease_seconds))},
                  ":rid": {"S": record_id}, ":now": {"N": str(int(time.time() - self.clock_skew))}, ":one": {"N": "1"},
                  ":zero": {"N": "0"}}
        used = {k: names[k] for k in ("#o", "#e", "#r", "#q")}
        own = "(attribute_not_exists(#o) OR #e < :now OR #o = :me)"
        conditions = [own]
        if not force:
            values[":ok"] = {"S": OCR_RESULT}
            used["#d"] = names["#d"]
            conditions = [" AND ".join([own, "(attribute_not_exists(#d) OR #d <> :ok)",
                                        *_fresh_terms(names, values, used, since, began, seen)])]
            if digest:  # other content than the last run read: a new revision, whatever that run did
                used["#g"] = names["#g"]
                values[":dig"] = {"S": digest}
                conditions.append(f"{own} AND attribute_exists(#g) AND #g <> :dig")
        # Flat conditions tried in turn rather than one nested expression: the local database's parser
        # takes time exponential in the nesting (74 ms a claim nested, 5 ms flat).
        update = "SET #o = :me, #e = :exp, #r = :rid, #q = if_not_exists(#q, :zero) + :one"
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        for attempt, condition in enumerate(conditions, 1):
            placeholders = set(re.findall(r"[#:]\w+", update + condition))  # each expression names only its own
            try:
                old = self.db.call("update_item", TableName=self.db.table, Key=key, ConditionExpression=condition,
                                 UpdateExpression=update,
                                 ExpressionAttributeNames={k: v for k, v in used.items() if k in placeholders},
                                 ExpressionAttributeValues={k: v for k, v in values.items() if k in placeholders},
                                 ReturnValues="ALL_OLD").get("Attributes", {})
                break
            except ClientError:
                if attempt == len(conditions):
                    return self._claim_refused(image_key, version, owner, record_id, lease_seconds, since, force,
                                               began, seen, digest)
        previous = deserialize(old) if old else {}
        taken_from = previous.get(names["#o"])
        return Claim(True, previous_record=previous.get(names["#r"]) if taken_from and taken_from != owner else None,
                     unconfirmed=_unconfirmed(previous, version, lease_seconds),
                     sequence=int(previous.get("Sequence", 0)) + 1,
                     previous_digest=_other_digest(previous, version, digest))

    def _claim_refused(self, image_key: str, version: str, owner: str, record_id: str, lease_seconds: float,
                       since: float | None, force: bool, began: Moment | None, seen: int | None,
                       digest: str | None) -> Claim:
        names = _claim_names(version)
        held = self.db.item(image_key, COUNTER_KEY) or {}
        new_content = _other_digest(held, version, digest) is not None
        if not force and not new_content:
            if held.get(names["#d"]) == OCR_RESULT:
                return Claim(False, "already succeeded")
            after_since = since is not None and float(held.get(names["#t"], 0)) >= since
            after_began = began is not None and held.get(names["#b"]) == began.boot != "?" and \
                float(held.get(names["#m"], 0)) >= began.clock
            if after_since or after_began or (seen is not None and int(held.get(names["#s"], 0)) > seen):
                return Claim(False, "processed by another run meanwhile")
        holder = held.get(names["#o"])
        if holder and owner_gone(holder):  # its process died on this host: take over now
            try:
                old = self.db.call("update_item", TableName=self.db.table, ConditionExpression="#o = :old",
                                 Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                                 UpdateExpression="SET #o = :me, #e = :exp, #r = :rid, "
                                                  "#q = if_not_exists(#q, :zero) + :one",
                                 ExpressionAttributeNames={**{k: names[k] for k in ("#o", "#e", "#r")},
                                                           "#q": "Sequence"},
                                 ExpressionAttributeValues={":old": {"S": holder}, ":me": {"S": owner},
                                                            ":exp": {"N": str(lease_end(lease_seconds))},
                                                            ":rid": {"S": record_id}, ":one": {"N": "1"},
                                                            ":zero": {"N": "0"}},
                                 ReturnValues="ALL_OLD")
                previous = deserialize(old.get("Attributes", {}))
                return Claim(True, previous_record=previous.get(names["#r"]),
                             unconfirmed=_unconfirmed(previous, version, lease_seconds),
                             sequence=int(previous.get("Sequence", 0)) + 1,
                             previous_digest=_other_digest(previous, version, digest))
            except ClientError:
                pass  # someone else took it over first
        return Claim(False, "claimed by another run")

    def release(self, image_key: str, version: str, owner: str, record_type: str, count_failure: bool,
                record_id: str = "", timestamp: str = "", *, sequence: int | None = None,
                digest: str | None = None) -> int | None:
        """Let go of a claim, noting how the run ended (its sequence, the content it read); with
        `count_failure`, also count one more failure of the image and return the count (the failure's
        AttemptNumber). The failure's record id, key and numbers stay on the image until a later run
        confirms the record got written."""
        names = {**_claim_names(version), **_failure_names(version)}
        key = serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY})
        ended = Moment.now()
        values = {":end": {"S": record_type}, ":me": {"S": owner}, ":now": {"N": repr(time.time())},
                  ":clock": {"N": repr(ended.clock)}, ":boot": {"S": ended.boot}}
        sets = ["#d = :end", "#t = :now", "#m = :clock", "#b = :boot"]
        if sequence is not None:
            sets.append("#s = :seq")
            values[":seq"] = {"N": str(sequence)}
        if digest:
            sets.append("#g = :dig")
            values[":dig"] = {"S": digest}
        if count_failure:
            self.reads.follow_writers(image_key)
            names["#c"] = "FailureCount"
            values.update({":one": {"N": "1"}, ":zero": {"N": "0"}, ":rid": {"S": record_id or "?"},
                           ":at": {"S": timestamp or "?"}})
            sets += ["#c = if_not_exists(#c, :zero) + :one", "#la = if_not_exists(#c, :zero) + :one",
                     "#lr = :rid", "#lk = :at", "#lo = :me"]
            sets += ["#ls = :seq"] if sequence is not None else []
        # A failure another run counted and has not confirmed stays, whatever this run's outcome: it is
        # that run's to confirm, or the next plan's to account for once that run is known to be gone.
        update = f"SET {', '.join(sets)} REMOVE #o, #e, #r"
        used = {k: names[k] for k in set(re.findall(r"#\w+", update))}
        try:
            out = self.db.call("update_item", TableName=self.db.table, Key=key, ConditionExpression="#o = :me",
                             UpdateExpression=update, ExpressionAttributeNames=used,
                             ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")
        except ClientError:  # the claim was taken over (lease expired): leave it, count all the same
            return self.next_attempt(image_key) if count_failure else None
        return int(out["Attributes"]["FailureCount"]["N"]) if count_failure else None

    def let_go(self, image_key: str, version: str, owner: str) -> None:
        """Give up a claim unused (the run stopped before it had an outcome): the next run takes it at once."""
        names = _claim_names(version)
        try:
            self.db.call("update_item", TableName=self.db.table, ConditionExpression="#o = :me",
                       Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                       UpdateExpression="REMOVE #o, #e, #r",
                       ExpressionAttributeNames={k: names[k] for k in ("#o", "#e", "#r")},
                       ExpressionAttributeValues={":me": {"S": owner}})
        except (ClientError, StoreUnavailable):
            pass  # taken over meanwhile, or the store is down: the lease (or the owner's exit) frees it

    def confirm(self, image_key: str, version: str, record_id: str) -> None:
        """The failure `record_id` is accounted for: forget it (unless a newer one replaced it)."""
        names = _failure_names(version)
        try:
            self.db.call("update_item", TableName=self.db.table, ConditionExpression="#lr = :rid",
                       Key=serialize({"ImageKey": image_key, "FailureTimestamp": COUNTER_KEY}),
                       UpdateExpression="REMOVE #lr, #lk, #la, #lo, #ls", ExpressionAttributeNames=names,
                       ExpressionAttributeValues={":rid": {"S": record_id}})
        except ClientError:
            pass

    def counters(self, keys: Iterable[str], version: str, lease_seconds: float
                 ) -> Iterator[tuple[str, int, Unconfirmed | None]]:
        """Each image's counter as it stands now (a consistent read, 100 images a request): the Sequence
        it last handed out (0 for an image never numbered), and a failure a run now gone counted under
        the version but never confirmed written. What a batch plans against."""
        keys = list(keys)
        found = {r["ImageKey"]: r for r in self.db.get_many(((k, COUNTER_KEY) for k in keys))}
        for key in keys:
            counter: Mapping[str, Any] = found.get(key, {})
            yield key, int(counter.get("Sequence", 0)), _unconfirmed(counter, version, lease_seconds)
