"""The stand-in's Files API (``/v1/files``) and Batch API (``/v1/batches``).

Uploaded files live in memory. A batch runs offline from its JSONL input, through the same
answers as ``/v1/chat/completions`` (echo, schemas, scripted faults per line), and is done
at once or after a scripted delay; tests can also make it fail, expire part-way or be
cancelled. Not a model: see the server module.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .chat import completion_parts, usage
from .wire import Handler, StandIn

TERMINAL = ("completed", "failed", "expired", "cancelled")
_IDS = itertools.count(1)


@dataclass
class BatchScript:
    """How the stand-in runs the next batches."""

    delay: float = 0.0  # seconds in_progress before the batch finishes
    outcome: str = "completed"  # or "failed" (validation) or "expired"
    expire_after: int = 0  # with outcome "expired": how many lines ran before the window closed


@dataclass
class Store:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # output, error lines
    script: BatchScript = field(default_factory=BatchScript)


def store_of(server: StandIn) -> Store:
    """The files and batches of one stand-in server (tests script ``store_of(s).script``)."""
    store = vars(server).get("_files_and_batches")
    if store is None:
        store = vars(server)["_files_and_batches"] = Store()
    return store


def _error(handler: Handler, status: int, message: str, param: str | None = None) -> None:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    handler._json(status, {"error": error})


def _last(handler: Handler, skip: int = 0) -> str:
    parts = handler.path.split("?")[0].rstrip("/").split("/")
    return parts[-1 - skip]


def add_file(store: Store, name: str, data: bytes, purpose: str) -> dict[str, Any]:
    file_id = f"file-standin{next(_IDS):04d}"
    meta = {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(time.time()),
        "filename": name,
        "purpose": purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }
    store.files[file_id] = meta
    store.contents[file_id] = data
    return meta


# -- /v1/files -------------------------------------------------------------------------


def upload(handler: Handler, raw: bytes) -> None:
    head = f"Content-Type: {handler.headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields: dict[str, Any] = {}
    name, data = "upload", None
    for part in message.iter_parts() if message.is_multipart() else []:
        key = part.get_param("name", header="content-disposition")
        if key == "file":
            payload = part.get_payload(decode=True)
            name, data = part.get_filename() or "upload", payload if isinstance(payload, bytes) else None
        elif key:
            fields[str(key)] = part.get_content().strip()
    handler._record({"filename": name, "purpose": fields.get("purpose"), "bytes": len(data or b"")})
    if data is None or not fields.get("purpose"):
        return _error(handler, 400, "a multipart 'file' and a 'purpose' are required", "file")
    handler._json(200, add_file(store_of(handler.stand_in), name, data, fields["purpose"]))


def list_files(handler: Handler, raw: bytes) -> None:
    handler._record(None)
    data = list(store_of(handler.stand_in).files.values())
    handler._json(200, {"object": "list", "data": data, "has_more": False})


def retrieve_file(handler: Handler, raw: bytes) -> None:
    handler._record(None)
    meta = store_of(handler.stand_in).files.get(_last(handler))
    if meta is None:
        return _error(handler, 404, f"No such File object: {_last(handler)}", "id")
    handler._json(200, meta)


def file_content(handler: Handler, raw: bytes) -> None:
    handler._record(None)
    data = store_of(handler.stand_in).contents.get(_last(handler, 1))
    if data is None:
        return _error(handler, 404, f"No such File object: {_last(handler, 1)}", "id")
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def delete_file(handler: Handler, raw: bytes) -> None:
    handler._record(None)
    store = store_of(handler.stand_in)
    file_id = _last(handler)
    if store.files.pop(file_id, None) is None:
        return _error(handler, 404, f"No such File object: {file_id}", "id")
    store.contents.pop(file_id, None)
    handler._json(200, {"id": file_id, "object": "file", "deleted": True})


# -- /v1/batches -----------------------------------------------------------------------


def create_batch(handler: Handler, raw: bytes) -> None:
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError:
        body = None
    handler._record(body)
    if not isinstance(body, dict):
        return _error(handler, 400, "body is not JSON")
    store = store_of(handler.stand_in)
    endpoint = body.get("endpoint")
    if endpoint not in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"):
        return _error(handler, 400, f"unsupported endpoint {endpoint!r}", "endpoint")
    if body.get("completion_window") != "24h":
        return _error(handler, 400, "completion_window must be '24h'", "completion_window")
    meta = store.files.get(str(body.get("input_file_id")))
    if meta is None:
        return _error(handler, 400, f"No such File object: {body.get('input_file_id')}", "input_file_id")
    if meta["purpose"] != "batch":
        return _error(handler, 400, "the input file's purpose must be 'batch'", "input_file_id")
    now = int(time.time())
    batch: dict[str, Any] = {
        "id": f"batch_standin{next(_IDS):04d}",
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": meta["id"],
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 86400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata") or None,
    }
    script = store.script
    lines, problems = _read_lines(store.contents[meta["id"]], endpoint)
    if problems or script.outcome == "failed":
        problems = problems or [
            {"code": "scripted_failure", "message": "scripted: the batch failed", "line": None}
        ]
        batch.update(status="failed", failed_at=now, errors={"object": "list", "data": problems})
        store.batches[batch["id"]] = batch
        return handler._json(200, batch)
    batch["request_counts"]["total"] = len(lines)
    batch["_ready_at"] = time.monotonic() + script.delay
    batch["_outcome"] = script.outcome
    run = lines[: script.expire_after] if script.outcome == "expired" else lines
    store.results[batch["id"]] = _run(handler, run)
    store.batches[batch["id"]] = batch
    handler._json(200, _public(_advance(store, batch)))


def retrieve_batch(handler: Handler, raw: bytes) -> None:
    handler._record(None)
    store = store_of(handler.stand_in)
    batch = store.batches.get(_last(handler))
    if batch is None:
        return _error(handler, 404, f"No such Batch object: {_last(handler)}", "batch_id")
    handler._json(200, _public(_advance(store, batch)))


def cancel_batch(handler: Handler, raw: bytes) -> None:
    handler._record(None)
    store = store_of(handler.stand_in)
    batch = store.batches.get(_last(handler, 1))
    if batch is None:
        return _error(handler, 404, f"No such Batch object: {_last(handler, 1)}", "batch_id")
    _advance(store, batch)
    if batch["status"] in TERMINAL:
        return _error(handler, 400, f"cannot cancel a batch that is {batch['status']}")
    now = int(time.time())
    batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
    batch["_ready_at"] = 0.0
    handler._json(200, _public(batch))


def _read_lines(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines, problems, seen = [], [], set()
    for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            problems.append({"code": "invalid_json_line", "message": "this line is not JSON", "line": number})
            continue
        custom = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(custom, str) or custom in seen:
            problems.append(
                {"code": "invalid_custom_id", "message": "custom_id missing or repeated", "line": number}
            )
            continue
        if line.get("method") != "POST" or line.get("url") != endpoint:
            problems.append(
                {"code": "mismatched_url", "message": f"each line must POST to {endpoint}", "line": number}
            )
            continue
        seen.add(custom)
        lines.append(line)
    return lines, problems


def _run(handler: Handler, lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Answer every line as /v1/chat/completions would (scripted faults become error lines)."""
    output, errors = [], []
    for n, line in enumerate(lines):
        body = line.get("body") or {}
        script = handler.stand_in.next_script()
        request_id = f"req_standin{n:05d}"
        if script.status != 200:
            error = {"message": script.error, "type": "server_error", "param": None, "code": script.code}
            response = {"status_code": script.status, "request_id": request_id, "body": {"error": error}}
            errors.append(
                json.dumps(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": line["custom_id"],
                        "response": response,
                        "error": None,
                    }
                )
            )
            continue
        choices, reasons = completion_parts(body, script, handler.stand_in.quirks)
        completion = {
            "id": f"chatcmpl-standin{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "".join(p)},
                    "finish_reason": reasons[i],
                }
                for i, p in enumerate(choices)
            ],
            "usage": usage(body, choices),
        }
        response = {"status_code": 200, "request_id": request_id, "body": completion}
        output.append(
            json.dumps(
                {"id": f"batch_req_{n}", "custom_id": line["custom_id"], "response": response, "error": None}
            )
        )
    return output, errors


def _advance(store: Store, batch: dict[str, Any]) -> dict[str, Any]:
    """Move a batch along the clock: validating → in_progress → its outcome."""
    if batch["status"] in TERMINAL:
        return batch
    now = int(time.time())
    if time.monotonic() < batch["_ready_at"]:
        batch.update(status="in_progress", in_progress_at=batch["in_progress_at"] or now)
        return batch
    output, errors = store.results.get(batch["id"], ([], []))
    if output:
        batch["output_file_id"] = add_file(
            store, f"{batch['id']}_output.jsonl", _jsonl(output), "batch_output"
        )["id"]
    if errors:
        batch["error_file_id"] = add_file(
            store, f"{batch['id']}_error.jsonl", _jsonl(errors), "batch_output"
        )["id"]
    batch["request_counts"].update(completed=len(output), failed=len(errors))
    if batch["_outcome"] == "expired":
        batch.update(status="expired", expired_at=now)
    else:
        batch.update(status="completed", finalizing_at=now, completed_at=now)
    return batch


def _jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
