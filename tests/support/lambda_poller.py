"""What Lambda's SQS event source mapping does, with the function's role, against a local SQS server.

It reads the queue's attributes once (as the mapping does when it is created), receives up to
`batch_size` messages, invokes the function with the SQS event, and deletes the messages the
function did not name in `batchItemFailures`. The others become visible again after the queue's
visibility timeout (tests give the queue 0 s instead of the template's 1800), and the queue's
redrive policy moves a message to the dead-letter queue once it has been received maxReceiveCount
times: the retry path of a real deployment, one poll at a time.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

from support.aws_shapes import from_received


class EventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, function: Callable[[dict, Any], dict], batch_size: int) -> None:
        self.sqs, self.queue_url, self.function, self.batch_size = sqs, queue_url, function, batch_size
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.invocations: list[dict[str, Any]] = []

    def poll(self) -> bool:
        """One receive and invocation; False when the queue had nothing to give."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                            AttributeNames=["All"], MessageAttributeNames=["All"],
                                            WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return False
        context = SimpleNamespace(aws_request_id=f"req-{len(self.invocations)}",
                                  log_stream_name="2025/10/25/[$LATEST]0123456789abcdef")
        response = self.function({"Records": [from_received(m, self.queue_arn) for m in messages]}, context)
        self.invocations.append(response)
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
        return True

    def drain(self, most: int = 100) -> int:
        """Poll until the queue is empty (at most `most` polls); the number of invocations."""
        for polls in range(most):
            if not self.poll():
                return polls
        raise AssertionError(f"the queue was not empty after {most} polls")
