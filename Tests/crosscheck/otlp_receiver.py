"""A small OTLP/HTTP trace receiver: decodes ExportTraceServiceRequest bodies with the
opentelemetry-proto package (PyPI) — an implementation that is not Switchyard's — and serves what
it received as JSON.

usage: otlp_receiver.py PORT_FILE
Listens on an ephemeral loopback port, writes it to PORT_FILE, then serves:
  POST /v1/traces   OTLP/HTTP, application/x-protobuf
  GET  /spans       every span so far: [{trace_id, span_id, parent_span_id, name, kind, status, attributes}]
"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span

spans = []
lock = threading.Lock()


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        spans.append({
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(), "name": span.name,
                            "kind": Span.SpanKind.Name(span.kind), "status": span.status.code,
                            "attributes": {a.key: value(a.value) for a in span.attributes},
                            "service": resource.get("service.name"),
                        })
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self):
        with lock:
            reply = json.dumps(spans).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
# The test hands us a pipe as stdin and never writes to it: its end (the test process exiting,
# however it exits) ends the receiver, so none outlives the test run.
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.buffer.read()
