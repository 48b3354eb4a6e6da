#!/usr/bin/env python3
"""Streaming time to first token, direct vs through a gateway (the gateway-overhead harness's
SSE mode times whole streams, not the first token).

Over one kept-alive connection with TCP_NODELAY, sends N streaming chat requests one after the
other and times each from the request's send to the first `data:` event whose delta carries
non-empty content; prints p50/p99/max in ms (20 warm-up requests are not counted). A 40 ms
Nagle stall on either side shows up as p50 or max near 40 ms.

Usage: scripts/bench-ttft.py HOST PORT PATH MODEL N
  e.g. the harness's SSE upstream: scripts/bench-ttft.py 127.0.0.1 18082 /v1/chat/completions m 1000
       a gateway in front of it:   scripts/bench-ttft.py 127.0.0.1 18110 /v1/chat/completions auto 1000
"""
import json
import re
import socket
import sys
import time

CONTENT = re.compile(rb'"content":"([^"]+)"')


def main() -> None:
    host, port, path, model, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    body = json.dumps({"model": model, "stream": True, "max_tokens": 32,
                       "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}).encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ttft, whole = [], []
    for i in range(n + 20):
        start = time.perf_counter()
        sock.sendall(request)
        buf, first = b"", None
        while True:
            data = sock.recv(65536)
            if not data:
                sys.exit("the server closed the connection")
            buf += data
            payload = buf.split(b"\r\n\r\n", 1)[-1]
            if first is None and CONTENT.search(payload):
                first = time.perf_counter()
            if payload.endswith(b"0\r\n\r\n"):  # the chunked body's end
                break
        if first is None:
            sys.exit("a stream carried no content")
        if i >= 20:
            ttft.append((first - start) * 1000)
            whole.append((time.perf_counter() - start) * 1000)
    ttft.sort()
    whole.sort()
    q = lambda a, p: a[min(len(a) - 1, int(p * len(a)))]
    print(f"{host}:{port}{path} n={len(ttft)} ttft p50={q(ttft, .5):.3f} ms p99={q(ttft, .99):.3f} ms "
          f"max={ttft[-1]:.3f} ms; whole stream p50={q(whole, .5):.3f} ms")


if __name__ == "__main__":
    main()
