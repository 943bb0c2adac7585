#!/usr/bin/env python3
"""An independent gRPC client (Python grpcio) for the TLS and API-key tests.

    tls_client_check.py ADDRESS [--ca PEM] [--cert PEM --key PEM]
        [--target-name NAME] [--api-key KEY] [--text T] [--max-tokens N]
        [--call generate|health]

Makes one call and prints `CODE <grpc status name>`, then for Generate
`IDS <space-separated token ids>`; on an error `DETAILS <message>` and, when
the server sent one, `RETRY_AFTER <seconds>`. Without --ca the
channel is plaintext. The request is hand-encoded protobuf (no generated
stubs, so the client shares no code with Tessera). Exit 0 when the call
ended (whatever its status), 3 when grpcio is missing.
"""
import argparse
import struct
import sys

try:
    import grpc
except ImportError:
    print("grpcio is not installed", file=sys.stderr)
    sys.exit(3)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    key = varint((number << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def generate_request(text, max_tokens):
    sampling = varint((1 << 3) | 5) + struct.pack("<f", 0.0)  # temperature = 0: greedy
    return field(2, 2, text.encode()) + field(5, 2, sampling) + field(6, 0, max_tokens)


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def token_ids(message):
    """The token_ids (field 3, packed or not) of one GenerateResponse."""
    ids, i = [], 0
    while i < len(message):
        key, i = read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(message, i)
            if number == 3:
                ids.append(value)
        elif wire == 2:
            length, i = read_varint(message, i)
            chunk = message[i:i + length]
            i += length
            if number == 3:
                j = 0
                while j < len(chunk):
                    value, j = read_varint(chunk, j)
                    ids.append(value)
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
    return ids


def main():
    p = argparse.ArgumentParser()
    p.add_argument("address")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--target-name")
    p.add_argument("--api-key")
    p.add_argument("--text", default="The capital of France is")
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--call", default="generate", choices=["generate", "health"])
    a = p.parse_args()

    options = []
    if a.target_name:
        options.append(("grpc.ssl_target_name_override", a.target_name))
    if a.ca:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(a.ca),
            private_key=read(a.key) if a.key else None,
            certificate_chain=read(a.cert) if a.cert else None)
        channel = grpc.secure_channel(a.address, creds, options)
    else:
        channel = grpc.insecure_channel(a.address, options)
    metadata = [("authorization", "Bearer " + a.api_key)] if a.api_key else []

    ids = []
    try:
        if a.call == "health":
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            check(b"", timeout=20, metadata=metadata)
        else:
            generate = channel.unary_stream("/tessera.v1.Inference/Generate")
            for message in generate(generate_request(a.text, a.max_tokens), timeout=60,
                                    metadata=metadata):
                ids.extend(token_ids(message))
        print("CODE OK")
    except grpc.RpcError as e:
        print("CODE " + e.code().name)
        print("DETAILS " + (e.details() or "").replace("\n", " "))
        for key, value in e.trailing_metadata() or ():
            if key == "retry-after":
                print("RETRY_AFTER " + value)
    print("IDS " + " ".join(str(i) for i in ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
