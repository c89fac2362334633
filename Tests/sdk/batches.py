"""Message Batches with the official anthropic SDK, unmodified: client.messages.batches.create,
retrieve, list, results, cancel and delete against Switchyard (SQLite store).
Route `default` is healthy; route `stuck` has only a model whose upstream answers 529 to
everything, so its batch waits (delayed, never failed) until it is canceled.
Usage: batches.py ROUTER_URL
"""
import sys
import time

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-caller-key-for-e2e", max_retries=0)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def wait_ended(batch_id, timeout=60):
    start = time.time()
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended" or time.time() - start > timeout:
            return batch
        time.sleep(0.1)


requests = [
    {"custom_id": f"req-{i}", "params": {"model": "default", "max_tokens": 32, "messages": [{"role": "user", "content": f"item {i}"}]}}
    for i in range(5)
]
batch = client.messages.batches.create(requests=requests)
check(batch.type == "message_batch" and batch.id.startswith("msgbatch_"), "batches.create returns a MessageBatch")
check(batch.processing_status == "in_progress" and batch.request_counts.processing == 5, "created in_progress with 5 processing")

ended = wait_ended(batch.id)
check(ended.processing_status == "ended" and ended.request_counts.succeeded == 5, "batches.retrieve: ended, 5 succeeded")
check(ended.results_url is not None and ended.ended_at is not None, "results_url and ended_at are set once ended")
results = list(client.messages.batches.results(batch.id))
check(sorted(r.custom_id for r in results) == [f"req-{i}" for i in range(5)], "batches.results: one result per custom_id")
check(all(r.result.type == "succeeded" and r.result.message.content[0].text.startswith("chunk0") for r in results),
      "each result is a succeeded Message")

ids = [b.id for b in client.messages.batches.list(limit=20)]
check(batch.id in ids, "batches.list includes it")

stuck = client.messages.batches.create(requests=[
    {"custom_id": "stuck-1", "params": {"model": "stuck", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}}
])
time.sleep(0.5)
check(client.messages.batches.retrieve(stuck.id).processing_status == "in_progress", "an outage delays a batch, it does not fail it")
canceling = client.messages.batches.cancel(stuck.id)
check(canceling.cancel_initiated_at is not None, "batches.cancel starts cancellation")
stopped = wait_ended(stuck.id)
check(stopped.request_counts.canceled == 1, "the canceled batch ends with its request canceled")
check([r.result.type for r in client.messages.batches.results(stuck.id)] == ["canceled"], "its result is canceled")

deleted = client.messages.batches.delete(batch.id)
check(deleted.type == "message_batch_deleted" and deleted.id == batch.id, "batches.delete")
try:
    client.messages.batches.retrieve(batch.id)
    check(False, "a deleted batch is gone")
except anthropic.NotFoundError:
    check(True, "a deleted batch is gone (NotFoundError)")
try:
    client.messages.batches.create(requests=[{"custom_id": "x", "params": {"model": "gpt-5", "max_tokens": 8, "messages": []}}])
    check(False, "an unknown route refuses the create")
except anthropic.BadRequestError as error:
    check("gpt-5" in str(error), "an unknown route refuses the whole create (BadRequestError naming it)")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("Message Batches with the anthropic SDK: all checks passed")
