#!/usr/bin/env python3
# Writes the fuzz targets' seed corpora: python3 tests/fuzz/make_seeds.py tests/fuzz/corpus
# The seeds are committed; this is how they were made (the key set's keys are new each time).
# Every seed is an input the target's first byte(s) route as its comment says.
import base64, hashlib, hmac, json, os, re, subprocess, sys, tempfile

out = sys.argv[1]
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def put(name, i, data):
    d = os.path.join(out, name); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, f"seed-{i:02d}"), "wb").write(data)
def js(o): return json.dumps(o, separators=(",", ":"))

# jwt: first byte 0 = whole token, 1 = claims, 2 = header.
claims = {"sub": "user-42", "exp": 1700000600, "iat": 1700000000, "iss": "https://issuer.example", "aud": "qai", "roles": ["admin"]}
def token(header, payload, key=b"x" * 32):
    si = b64u(js(header).encode()) + "." + b64u(js(payload).encode())
    return si + "." + b64u(hmac.new(key, si.encode(), hashlib.sha256).digest())
jwt = [
    b"\0" + token({"alg": "HS256", "kid": "new"}, claims).encode(),
    b"\0" + token({"alg": "HS256"}, claims).encode(),
    b"\0" + (b64u(b'{"alg":"none"}') + "." + b64u(js(claims).encode()) + ".").encode(),
    b"\0" + token({"alg": "RS256", "kid": "k1"}, claims).encode(),
    b"\0a.b.c",
    b"\1" + js(claims).encode(),
    b"\1" + js({**claims, "aud": ["other", "qai"], "nbf": 1699999990}).encode(),
    b"\1" + js({"sub": "u" * 300, "exp": 1e300}).encode(),
    b"\1" + b'{"sub":"a\\u0000b","exp":"soon","roles":[1,2]}',
    b"\2" + b'{"alg":"HS256","kid":"old"}',
    b"\2" + b'{"alg":"HS256","crit":["b64"],"b64":false}',
    b"\2" + b'{"alg":"ES256","kid":["k"]}',
]
for i, s in enumerate(jwt): put("jwt", i, s)

# jwks: an RSA and a P-256 key as providers publish them, and sets with keys to skip.
def openssl(*args): return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout
keys = tempfile.mkdtemp()
rsa = os.path.join(keys, "rsa.pem"); ec = os.path.join(keys, "ec.pem")
openssl("genrsa", "-out", rsa, "2048")
openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ec)
n = bytes.fromhex(openssl("rsa", "-in", rsa, "-noout", "-modulus").split("=")[1].strip())
pub = openssl("ec", "-in", ec, "-text", "-noout")
point = bytes.fromhex(re.sub(r"[^0-9a-f]", "", pub.split("pub:")[1].split("ASN1")[0]))
x, y = point[1:33], point[33:65]
rsa_key = {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64u(n), "e": "AQAB"}
ec_key = {"kty": "EC", "kid": "k2", "crv": "P-256", "x": b64u(x), "y": b64u(y)}
jwks = [
    {"keys": [rsa_key, ec_key]},
    {"keys": [rsa_key, {"kty": "oct", "k": "c2VjcmV0"}, {**ec_key, "use": "enc"}]},
    {"keys": [{**ec_key, "x": b64u(y)}, {**rsa_key, "n": "AQAB"}]},
    {"keys": [{**rsa_key, "kid": 7}]},
    {"keys": {}},
]
for i, s in enumerate(jwks): put("jwks", i, js(s))

# page_token: first byte 0 = a token to decode, 1 = a cursor to round-trip.
def page_token(scope, cursor, key=b"other-key" * 4):
    k = b"qai-page-token\x1f" + key
    mac = hmac.new(k, f"{len(scope)}:{scope}".encode() + cursor, hashlib.sha256).digest()[:16]
    return b64u(mac + cursor).encode()
cursor = b"1700000000000000/6f1c1a52-2c58-4d0e-9a51-2d4f5b0b8e11"
for i, s in enumerate([b"\0" + page_token("projects/owner:alice", cursor), b"\0" + page_token("projects/owner:bob", cursor),
                       b"\0AAAA", b"\0", b"\1" + cursor, b"\1" + b"-1/not-a-uuid\0\xff"]):
    put("page_token", i, s)

# model_json: answers to an unstreamed call, and error bodies.
completion = {"id": "c1", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "ok",
    "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "terminal", "arguments": "{\"command\":\"ls\"}"}},
                   {"id": "t2", "type": "function", "function": {"name": "readFiles", "arguments": {"files": ["a", {"b": [1]}]}}}]}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}
for i, s in enumerate([js(completion), js({"choices": [{"message": {"content": "hi \u00e9"}, "finish_reason": "stop"}]}),
                       js({"error": {"message": "rate limited", "type": "requests"}}), js({"detail": "bad model"}),
                       "[" * 64 + "]" * 64, "upstream connect error"]):
    put("model_json", i, s)

# model_sse: two bytes for the piece size, then a streamed answer.
def sse(*chunks, done=True):
    s = "".join(f"data: {js(c)}\n\n" for c in chunks)
    return s + ("data: [DONE]\n\n" if done else "")
text = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}]
calls = [{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "terminal", "arguments": ""}}]}}]},
         {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"comm"}}]}}]},
         {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "and\":\"ls\"}"}}, {"index": 9223372036854775807, "id": "t2"}]}}]},
         {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
for i, s in enumerate([b"\0\7" + sse(*text).encode(), b"\x10\0" + sse(*calls).encode(), b"\0\1" + sse(*text, done=False).encode(),
                       b"\0\3" + b": keep-alive\r\n\r\nevent: message\r\ndata: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"x\"}}]}\r\n\r\n",
                       b"\0\5" + b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"]):
    put("model_sse", i, s)

# tool_args: first byte = the tool (0 terminal, 1 createOrUpdateFiles, 2 readFiles, 3 unknown).
for i, s in enumerate([b"\0" + b'{"command":"npm run build"}', b"\0" + b'{"command":"a\\u0000b"}', b"\0" + b'{"command":7}',
                       b"\1" + js({"files": [{"path": "index.html", "content": "<h1>hi</h1>"}, {"path": 3}]}).encode(),
                       b"\2" + js({"files": ["index.html", None, "src/app.ts"]}).encode(),
                       b"\3" + b"{}", b"\0" + b"[" * 300, b"\1" + b"not json"]):
    put("tool_args", i, s)
