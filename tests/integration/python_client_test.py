#!/usr/bin/python3
"""Drives the real imbridge-router from an independent client.

Uses Debian's python3-grpcio and python3-protobuf; the stubs are generated at
test time from proto/ with protoc and grpc_python_plugin, so the test checks
the wire protocol as any third-party adapter would see it.
"""

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOURCE_DIR = os.environ.get("IMBRIDGE_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("IMBRIDGE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
TOKEN = "python-client-token-0123456789"
STUB_DIR = tempfile.mkdtemp(prefix="imbridge-pystubs-")


def generate_stubs():
    proto_root = os.path.join(SOURCE_DIR, "proto")
    # router.proto and the protos it imports.
    protos = [os.path.join(proto_root, "imbridge", "v1", name)
              for name in ("config.proto", "events.proto", "router.proto")]
    subprocess.run(
        ["protoc", "-I", proto_root, "--python_out", STUB_DIR,
         "--grpc_python_out", STUB_DIR,
         "--plugin=protoc-gen-grpc_python=" + shutil.which("grpc_python_plugin")]
        + protos, check=True)
    sys.path.insert(0, STUB_DIR)


generate_stubs()
import grpc  # noqa: E402
from imbridge.v1 import events_pb2, router_pb2, router_pb2_grpc  # noqa: E402


class Router:
    """The real router binary on 127.0.0.1, port 0, in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="imbridge-pyrouter-")
        config = os.path.join(self.dir, "router.yaml")
        with open(config, "w") as f:
            f.write(f"""listen: 127.0.0.1:0
http: {{listen: "127.0.0.1:0"}}
data_dir: {self.dir}/data
adapters: [{{name: py, token: {TOKEN}}}]
links:
  - name: pylink
    members:
      - {{platform: alpha, account: a, chat_id: A1}}
      - {{platform: beta, account: b, chat_id: B1}}
store: {{durability: normal}}
""")
        self.log = open(os.path.join(self.dir, "router.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD_DIR, "bridge", "imbridge-router"), "--config", config],
            stdout=subprocess.DEVNULL, stderr=self.log)
        port_file = os.path.join(self.dir, "data", "router.port")
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("router did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.address = "127.0.0.1:" + f.read().strip()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.log.close()
        return code


class Adapter:
    """One Attach stream, fed from a queue of AdapterFrames."""

    def __init__(self, address, platform, account, token=TOKEN):
        self.channel = grpc.insecure_channel(address)
        self.stub = router_pb2_grpc.RouterStub(self.channel)
        self.outgoing = queue.Queue()
        self.incoming = queue.Queue()
        hello = router_pb2.AdapterFrame()
        hello.hello.adapter_name = "python-" + platform
        hello.hello.platform = platform
        hello.hello.accounts.append(account)
        hello.hello.capabilities.extend(["edits", "deletes"])
        self.outgoing.put(hello)
        self.responses = self.stub.Attach(
            iter(self.outgoing.get, None),
            metadata=[("authorization", "Bearer " + token)])
        self.error = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for frame in self.responses:
                self.incoming.put(frame)
        except grpc.RpcError as e:
            self.error = e
            self.incoming.put(None)

    def next_frame(self, timeout=20):
        frame = self.incoming.get(timeout=timeout)
        if frame is None:
            raise self.error
        return frame

    def send(self, frame):
        self.outgoing.put(frame)

    def close(self):
        self.outgoing.put(None)
        self.channel.close()


def posted_event(key, message_id, text):
    e = events_pb2.Event(key=key)
    e.channel.platform, e.channel.account, e.channel.chat_id = "alpha", "a", "A1"
    e.posted.message_id = message_id
    e.posted.sender.id = "u1"
    e.posted.sender.display_name = "Ada"
    e.posted.text.text = text
    return e


class RouterFromPythonTest(unittest.TestCase):
    def setUp(self):
        self.router = Router()

    def tearDown(self):
        self.assertEqual(self.router.stop(), 0)

    def test_attach_publish_and_receive_a_delivery(self):
        a = Adapter(self.router.address, "alpha", "a")
        b = Adapter(self.router.address, "beta", "b")
        welcome = a.next_frame().welcome
        self.assertEqual([c.chat_id for c in welcome.channels], ["A1"])
        self.assertTrue(welcome.router_id)
        self.assertEqual([c.chat_id for c in b.next_frame().welcome.channels], ["B1"])

        frame = router_pb2.AdapterFrame()
        frame.publishes.add(seq=7, event=posted_event("alpha:a:1", "m-1", "hi from python"))
        a.send(frame)
        ack = a.next_frame().publish_acks[0]
        self.assertEqual(ack.seq, 7)
        self.assertEqual(ack.outcome, router_pb2.PublishAck.ACCEPTED)

        delivery = b.next_frame().deliveries[0]
        self.assertEqual(delivery.target.chat_id, "B1")
        self.assertEqual(delivery.event.posted.text.text, "hi from python")
        self.assertEqual(delivery.sender_name, "Ada (alpha)")
        self.assertTrue(delivery.idempotency_key)
        result = router_pb2.AdapterFrame()
        result.results.add(id=delivery.id, native_ids=["b-100"])
        b.send(result)

        # The edit is translated to beta's native id of the copy.
        edit = events_pb2.Event(key="alpha:a:2")
        edit.channel.platform, edit.channel.account, edit.channel.chat_id = "alpha", "a", "A1"
        edit.edited.message_id = "m-1"
        edit.edited.text.text = "edited"
        frame = router_pb2.AdapterFrame()
        frame.publishes.add(seq=8, event=edit)
        a.send(frame)
        self.assertEqual(a.next_frame().publish_acks[0].outcome,
                         router_pb2.PublishAck.ACCEPTED)
        delivery = b.next_frame().deliveries[0]
        self.assertEqual(list(delivery.target_message_ids), ["b-100"])
        self.assertEqual(delivery.event.edited.text.text, "edited")
        a.close()
        b.close()

    def test_standard_health_service_reports_serving(self):
        # grpc.health.v1.Health/Check with an empty request (all services);
        # the answer is HealthCheckResponse{status: SERVING (1)}, which is
        # the two bytes 08 01 on the wire.
        with grpc.insecure_channel(self.router.address) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                        request_serializer=lambda b: b,
                                        response_deserializer=lambda b: b)
            self.assertEqual(check(b"", timeout=10), b"\x08\x01")

    def test_wrong_token_is_unauthenticated(self):
        intruder = Adapter(self.router.address, "alpha", "a", token="not-the-token")
        with self.assertRaises(grpc.RpcError) as caught:
            intruder.next_frame()
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        intruder.close()


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(STUB_DIR, ignore_errors=True)
