#!/usr/bin/python3
"""
schemas/openapi.yaml against the real usher-api, request by request.

Starts usher-api on a database of its own (dropped, created and migrated
here), seeds two organizers with events, sessions, ticket types,
registrations, a webhook, a report, a material and jobs, then for every
operation of the spec sends requests generated from its schemas:

- a valid request as each caller (no token, organizer, the other
  organizer, admin, scanner): an allowed role succeeds, another answers
  401 (no token) or 403, the other organizer never reaches the first
  one's data;
- random valid requests by an allowed role: never refused as invalid;
- invalid ones, one fault at a time: each required body field missing,
  wrong types, null where the schema has no null, values out of range or
  breaking a pattern, broken cross-field rules, bad query parameters and
  headers, unknown and malformed path ids, and bodies that are not JSON
  objects: always a 4xx (a 422 `invalid` names the field at fault);
- a method the path lacks: 405 with an Allow header naming the others.

Every answer must have a status the operation documents (never a 5xx),
a Content-Type it documents, a body valid against the schema of that
status and documented headers that match theirs. The schema dialect is
OpenAPI 3.1 (JSON Schema 2020-12) with these extensions, also checked:

  x-usher-max-bytes: N            a string of at most N bytes of UTF-8
  x-usher-not-before: {b: a}      on an object: b is not before a when both are given
  x-usher-required-for: {role: [f]}  on an object: f is required for that role
  x-usher-lookup: pg_timezone_names  a string that must be a name of that PostgreSQL view
  x-usher-parameter-rules: [{if, then}]   on an operation: JSON Schema rules on
                                  the object of its query parameters
  x-usher-parameter-roles: [{if, roles}]  on an operation: who may call it when
                                  its query parameters match `if`

Deterministic (seeded); a few thousand requests. Prints one summary line
and exits 1 listing every violation.

usage: openapi_conformance.py USHER_API USHERCTL SPEC CONFIG MIGRATIONS
Needs USHER_DATABASE_URL (and the stack of scripts/stack.sh).
"""

import copy
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import yaml
from jsonschema import Draft202012Validator, FormatChecker, RefResolver, validators
from jsonschema.exceptions import ValidationError

SEED = 20261127
DATABASE = "usher_test_openapi_conformance"
RANDOM_VALID = 10  # random valid requests per operation and allowed role
FAR_ID = 987654321098765  # a well-formed id that names nothing
FIXTURE_START = "2030-06-01T09:00:00Z"
FIXTURE_END = "2030-06-03T18:00:00Z"
rng = random.Random(SEED)


def fail(message):
    print(f"openapi conformance: setup failed: {message}", file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------ schemas

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(text):
    """An RFC 3339 date-time as an aware datetime, or None."""
    m = RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    try:
        when = datetime.datetime(*(int(m.group(i)) for i in range(1, 6)),
                                 min(int(m.group(6)), 59), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    zone = m.group(8)
    if zone not in ("Z", "z"):
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        when -= (1 if zone[0] == "+" else -1) * datetime.timedelta(hours=hours, minutes=minutes)
    return when


FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time")
def is_date_time(value):
    return not isinstance(value, str) or parse_time(value) is not None


class Context:
    role = "none"
    timezones = frozenset()


def max_bytes(validator, limit, instance, schema):
    if isinstance(instance, str) and len(instance.encode()) > limit:
        yield ValidationError(f"{instance!r} is longer than {limit} bytes")


def not_before(validator, pairs, instance, schema):
    if not isinstance(instance, dict):
        return
    for later, earlier in pairs.items():
        a, b = parse_time(instance.get(earlier)), parse_time(instance.get(later))
        if a is not None and b is not None and b < a:
            yield ValidationError(f"{later} is before {earlier}")


def required_for(validator, roles, instance, schema):
    if not isinstance(instance, dict):
        return
    for name in roles.get(Context.role, []):
        if name not in instance:
            yield ValidationError(f"{name} is required for the {Context.role} role")


def lookup(validator, view, instance, schema):
    if view != "pg_timezone_names":
        yield ValidationError(f"unknown x-usher-lookup {view}")
    elif isinstance(instance, str) and instance not in Context.timezones:
        yield ValidationError(f"{instance!r} is not in {view}")


Validator = validators.extend(Draft202012Validator, {
    "x-usher-max-bytes": max_bytes,
    "x-usher-not-before": not_before,
    "x-usher-required-for": required_for,
    "x-usher-lookup": lookup,
})


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.resolver = RefResolver("", self.doc)
        self.ops = []
        for path_name, item in self.doc["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method == "parameters":
                    continue
                params = [self.deref(p) for p in shared + op.get("parameters", [])]
                self.ops.append(Op(self, path_name, method.upper(), op, params))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            extra = {k: v for k, v in node.items() if k != "$ref"}
            _, target = self.resolver.resolve(node["$ref"])
            node = {**target, **extra} if extra else target
        return node

    def ref_name(self, node):
        return node["$ref"].rsplit("/", 1)[1] if isinstance(node, dict) and "$ref" in node else None

    def validator(self, schema):
        return Validator(schema, resolver=self.resolver, format_checker=FORMATS)

    def errors(self, schema, instance, role="none"):
        Context.role = role
        return [e.message for e in self.validator(schema).iter_errors(instance)]


class Op:
    def __init__(self, spec, path, method, raw, params):
        self.spec, self.path, self.method, self.raw = spec, path, method, raw
        self.id = raw["operationId"]
        self.roles = set(raw["x-usher-roles"])
        self.params = params
        self.path_params = [p for p in params if p["in"] == "path"]
        self.query = [p for p in params if p["in"] == "query"]
        self.headers = [p for p in params if p["in"] == "header"]
        body = raw.get("requestBody", {}).get("content", {})
        self.json_body = body.get("application/json", {}).get("schema")
        self.raw_body = None if self.json_body is not None else body
        self.param_schema = {
            "type": "object",
            "properties": {p["name"]: p["schema"] for p in self.query + self.headers},
            "required": [p["name"] for p in self.query + self.headers if p.get("required")],
            "allOf": raw.get("x-usher-parameter-rules", []),
        }
        self.param_roles = raw.get("x-usher-parameter-roles", [])

    def __str__(self):
        return f"{self.method} {self.path} ({self.id})"

    def param_errors(self, params):
        """Why these query and header parameters (text, as sent) break the schemas."""
        typed = {}
        for p in self.query + self.headers:
            value = params.get(p["name"])
            if value is None:
                continue
            kind = self.spec.deref(p["schema"]).get("type")
            if kind == "integer" and isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value):
                value = int(value)
            typed[p["name"]] = value
        return self.spec.errors(self.param_schema, typed)

    def allowed(self, role, params):
        """May role call this operation with these query and header parameters?"""
        roles = self.roles
        for rule in self.param_roles:
            if not self.spec.errors(rule["if"], params):
                roles = set(rule["roles"])
        if "public" in roles:
            return True
        return role in roles or (role == "other" and "organizer" in roles)


# ------------------------------------------------------------------ the server and database

class Stack:
    def __init__(self, api_path, ctl_path, config, migrations):
        base = os.environ.get("USHER_DATABASE_URL")
        if not base:
            fail("USHER_DATABASE_URL is not set (eval \"$(scripts/stack.sh env)\")")
        self.admin_url = self.with_database(base, "postgres")
        self.url = self.with_database(base, DATABASE)
        self.api_path, self.ctl_path, self.config = api_path, ctl_path, config
        self.dir = tempfile.mkdtemp(prefix="usher-openapi-")
        self.env = dict(os.environ, USHER_DATABASE_URL=self.url, USHER_CONFIG=config,
                        USHER_API_LISTEN="127.0.0.1:0", USHER_API_METRICS_LISTEN="127.0.0.1:0",
                        USHER_API_RATE_PER_MINUTE="0",
                        USHER_DOCUMENT_DIR=os.path.join(self.dir, "documents"),
                        USHER_SEARCH_DIR=os.path.join(self.dir, "search"))
        if not self.env.get("USHER_TICKET_SECRET"):
            self.env["USHER_TICKET_SECRET"] = "5a" * 32
        self.psql(self.admin_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        self.psql(self.admin_url, f'CREATE DATABASE "{DATABASE}"')
        self.ctl("migrate", "--dir", migrations)
        self.proc = None
        self.port = 0

    @staticmethod
    def with_database(url, name):
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def psql(self, url, sql):
        run = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url,
                              "-c", sql], capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            fail(f"psql: {sql}: {run.stderr.strip()}")
        return run.stdout.strip()

    def sql(self, sql):
        return self.psql(self.url, sql)

    def ctl(self, *args):
        run = subprocess.run([self.ctl_path, "--config", self.config, *args], env=self.env,
                             capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            fail(f"usherctl {' '.join(args)}: {run.stderr.strip()}")
        return run.stdout.strip()

    def start(self):
        self.log = os.path.join(self.dir, "usher-api.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([self.api_path, "--config", self.config, "--threads", "2"],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.port == 0:
            if self.proc.poll() is not None:
                fail(f"usher-api exited with {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                fail(f"usher-api did not say where it listens; see {self.log}")
            with open(self.log, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = re.search(r"listening on [^ ]*:(\d+) with", line)
                    if m:
                        self.port = int(m.group(1))
            time.sleep(0.02)
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail(f"usher-api never became ready; see {self.log}")
            time.sleep(0.05)

    def stop(self):
        """SIGTERM; the exit status, or None when it had to be killed."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None
        self.count = 0

    def send(self, method, target, headers, body):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, target, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                self.count += 1
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


# ------------------------------------------------------------------ requests and checks

class Request:
    def __init__(self, op, role, path_values, query=None, headers=None, body=None,
                 content_type=None, raw=None, kind="valid", fault=None, field=None):
        self.op, self.role = op, role
        self.path_values = path_values
        self.query = query if query is not None else {}
        self.headers = headers if headers is not None else {}
        self.body = body  # a JSON value, or None
        self.raw = raw  # bytes sent as they are, or None
        self.content_type = content_type
        self.kind = kind  # valid, invalid, foreign (the other organizer's data), method
        self.fault = fault
        self.field = field  # the field (or header) at fault, for a 422 to name
        self.method = op.method

    def target(self):
        path = self.op.path
        for name, value in self.path_values.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        if self.query:
            path += "?" + urllib.parse.urlencode(
                [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in self.query.items()],
                quote_via=urllib.parse.quote)
        return path

    def payload(self):
        if self.raw is not None:
            return self.raw
        if self.kind == "method":
            return None
        if self.body is not None or self.op.json_body is not None:
            return json.dumps(self.body, ensure_ascii=False).encode()
        return None

    def describe(self):
        text = f"{self.method} {self.target()} as {self.role}"
        if self.fault:
            text += f" [{self.fault}]"
        body = self.payload()
        if body is not None:
            shown = body[:300].decode("utf-8", "replace")
            text += f" body={shown}{'...' if len(body) > 300 else ''}"
        return text


class Checker:
    def __init__(self, spec, client, tokens):
        self.spec, self.client, self.tokens = spec, client, tokens
        self.violations = []
        self.ops_seen = set()

    def violation(self, req, status, reason):
        self.violations.append(f"{req.op.id}: {req.describe()} -> {status}: {reason}")

    def send(self, req):
        headers = dict(req.headers)
        token = self.tokens.get(req.role)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = req.payload()
        if body is not None:
            headers["Content-Type"] = req.content_type or "application/json"
        status, resp_headers, data = self.client.send(req.method, req.target(), headers, body)
        self.ops_seen.add(req.op.id)
        self.check(req, status, resp_headers, data)
        return status, resp_headers, data

    def check(self, req, status, headers, data):
        op = req.op
        parsed = None
        if data and headers.get("content-type", "").startswith("application/json"):
            try:
                parsed = json.loads(data)
            except ValueError:
                self.violation(req, status, "the body is not JSON")
        if status >= 500:
            self.violation(req, status, f"a 5xx: {data[:200]!r}")
        if req.kind == "method":
            self.check_405(req, status, headers, parsed)
            return
        doc = op.raw["responses"].get(str(status))
        if doc is None:
            self.violation(req, status, "status not documented for the operation")
        else:
            self.check_response(req, status, self.spec.deref(doc), headers, data, parsed)
        self.check_expectation(req, status, parsed)

    def check_response(self, req, status, doc, headers, data, parsed):
        for name, header in doc.get("headers", {}).items():
            value = headers.get(name.lower())
            schema = self.spec.deref(header).get("schema")
            if value is None or schema is None:
                continue
            instance = int(value) if schema.get("type") == "integer" and value.isdigit() else value
            for err in self.spec.errors(schema, instance):
                self.violation(req, status, f"header {name}: {err}")
        content = doc.get("content")
        if req.method == "HEAD" or status == 304 or not content:
            if data and status == 304:
                self.violation(req, status, "a 304 with a body")
            return
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        known = {k.split(";")[0].strip().lower(): v for k, v in content.items()}
        entry = known.get(media) or known.get("*/*")
        if entry is None:
            self.violation(req, status, f"Content-Type {media!r} not documented")
            return
        if media == "application/json" and parsed is not None:
            for err in self.spec.errors(entry["schema"], parsed)[:3]:
                self.violation(req, status, f"body: {err}")

    def check_expectation(self, req, status, parsed):
        op, role = req.op, req.role
        error = parsed.get("error") if isinstance(parsed, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if req.kind in ("invalid", "nobody"):
            if not 400 <= status < 500:
                self.violation(req, status, "invalid input not refused with a 4xx")
            elif (status == 422 and code == "invalid" and req.field is not None
                  and error.get("field") not in (None, req.field)):
                self.violation(req, status, f"422 names {error.get('field')!r}, not {req.field!r}")
            return
        allowed = op.allowed(role, {**req.query, **req.headers})
        if not allowed:
            want = 401 if role == "none" else 403
            if status != want:
                self.violation(req, status, f"role {role} may not call it: expected {want}")
            return
        if req.kind == "foreign":
            if 200 <= status < 300:
                self.violation(req, status, "another organizer's data was reached")
            return
        if status in (400, 413, 415) or (status == 422 and code == "invalid"):
            self.violation(req, status, f"a valid request was refused: {parsed}")
        elif status in (401, 403) and "public" not in op.roles \
                and code in ("unauthorized", "forbidden"):
            self.violation(req, status, f"role {role} is allowed but was refused: {parsed}")
        elif req.kind == "baseline" and (role == "none" or "public" not in op.roles) \
                and not 200 <= status < 300:
            self.violation(req, status, f"the baseline request did not succeed: {parsed}")

    def check_405(self, req, status, headers, parsed):
        expected = set()
        for op in self.spec.ops:
            if op.path == req.op.path:
                expected.add(op.method)
                if op.method == "GET":
                    expected.add("HEAD")
        allow = {m.strip() for m in headers.get("allow", "").split(",") if m.strip()}
        if status != 405:
            self.violation(req, status, "a method the path lacks is not answered 405")
        elif allow != expected:
            self.violation(req, status, f"Allow {sorted(allow)} is not {sorted(expected)}")
        errors = self.spec.errors({"$ref": "#/components/schemas/Error"}, parsed)
        if errors:
            self.violation(req, status, f"405 body: {errors[0]}")


# ------------------------------------------------------------------ values from schemas

TEXT = "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 -_.,'éüßøñ漢字😀"
CONTROLS = "\t\n\r\u0001\u001f\u007f\u0085"  # sometimes in text: the schemas must say if refused
WORDS = ["launch", "keynote", "berlin", "night", "opening", "zoë", "music", "data"]


def text(lo, hi, max_bytes=None, alphabet=TEXT):
    n = rng.randint(lo, max(lo, hi))
    out = "".join(rng.choice(alphabet) for _ in range(n))
    if n > 0 and out.strip() != out:
        out = "x" + out[1:-1] + "x" if n > 1 else "x"
    if n > 2 and alphabet is TEXT and rng.random() < 0.15:
        at = rng.randrange(1, n - 1)
        out = out[:at] + rng.choice(CONTROLS) + out[at + 1:]
    if max_bytes is not None:
        while len(out.encode()) > max_bytes:
            out = out[:-1]
        out = out or "x"
    return out


def time_text(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Values:
    """Makes valid values from schemas, with the world's ids where a field names one."""

    def __init__(self, spec, world):
        self.spec, self.w = spec, world

    def merged(self, schema):
        schema = self.spec.deref(schema)
        if "allOf" in schema:
            out = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.merged(part)
                props = {**out.get("properties", {}), **part.get("properties", {})}
                out = {**out, **part, "properties": props,
                       "required": out.get("required", []) + part.get("required", [])}
            return out
        return schema

    def value(self, schema, name, ctx):
        s = self.merged(schema)
        fixed = self.named(name, s, ctx)
        if fixed is not None:
            return fixed
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return rng.choice(s["enum"])
        for key in ("oneOf", "anyOf"):
            if key in s:
                branches = [b for b in s[key] if self.merged(b).get("type") != "null"]
                return self.value(rng.choice(branches), name, ctx)
        kind = s.get("type")
        if isinstance(kind, list):
            if "null" in kind and name and rng.random() < 0.2:
                return None
            kind = next(k for k in kind if k != "null")
        if kind == "integer":
            lo = s.get("minimum", 0)
            return rng.randint(lo, min(s.get("maximum", lo + 1000), lo + 1000))
        if kind == "number":
            return round(rng.uniform(s.get("minimum", 0), s.get("maximum", 100)), 2)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "array":
            lo = s.get("minItems", 0)
            n = rng.randint(lo, min(s.get("maxItems", lo + 3), lo + 3))
            return [self.value(s.get("items", {}), name + "[]", ctx) for _ in range(n)]
        if kind == "object":
            return self.object(s, ctx)
        if kind == "string":
            return self.string(s, name)
        raise AssertionError(f"no value for {name}: {s}")

    def object(self, s, ctx):
        out = {}
        required = set(s.get("required", [])) | set(
            s.get("x-usher-required-for", {}).get(ctx.get("role"), []))
        for prop, sub in s.get("properties", {}).items():
            if prop in required or rng.random() < 0.6:
                out[prop] = self.value(sub, prop, ctx)
        return out

    def string(self, s, name):
        if s.get("format") == "date-time":
            return self.when(name)
        if "examples" in s:
            return rng.choice(s["examples"])
        lo, hi = s.get("minLength", 0), s.get("maxLength", 40)
        alphabet = "abcdefXYZ0123456789-_.:!~" if name == "Idempotency-Key" else TEXT
        for _ in range(40):
            value = text(lo, min(hi, lo + 24), s.get("x-usher-max-bytes"), alphabet)
            if "pattern" not in s or re.search(s["pattern"], value):
                return value
        raise AssertionError(f"no generator for {name} with pattern {s['pattern']}")

    def when(self, name):
        if name == "ends_at":
            return time_text(datetime.datetime(2030, 6, 4, tzinfo=datetime.timezone.utc)
                             + datetime.timedelta(hours=rng.randint(0, 5000)))
        return time_text(datetime.datetime(2030, 5, 31, tzinfo=datetime.timezone.utc)
                         - datetime.timedelta(hours=rng.randint(0, 5000)))

    def door_code(self, ctx):
        """Mostly a code never scanned; else one scanned before, or a forged one."""
        draw = rng.random() if ctx.get("kind") == "valid" else 0
        if draw < 0.6:
            return self.w.fresh_code()
        return self.w.code if draw < 0.8 else "U1" + text(10, 30, alphabet="ABCDEFGH234567")

    def named(self, name, s, ctx):
        w = self.w
        table = {
            "ticket_type_id": lambda: w.ticket_type,
            "organizer_id": lambda: w.org,
            "event_id": lambda: w.other_event if ctx.get("op") == "checkIn"
            and ctx.get("kind") == "valid" and rng.random() < 0.2 else w.event,
            "session_id": lambda: w.session,
            "ticket_type_ids": lambda: [w.ticket_type],
            "session_ids": lambda: [w.session],
            "endpoint": lambda: w.webhook,
            "cursor": lambda: w.any_job,
            "ticket_code": lambda: self.door_code(ctx) if ctx.get("op") == "checkIn" else w.code,
            "X-Ticket-Code": lambda: w.code,
            "email": lambda: f"p{rng.randint(1, 10**6)}.{text(1, 8, alphabet='abcxyzé')}@example.org"
            if "pattern" in s else None,
            "url": lambda: f"https://hooks.example.org/usher/{rng.randint(1, 10**6)}"
            if "pattern" in s else None,
            "q": lambda: " ".join(rng.sample(WORDS, rng.randint(1, 3))),
            "If-None-Match": lambda: '"0123456789abcdef0123456789abcdef"',
            "If-Range": lambda: w.content_etag,
            "Range": lambda: rng.choice(["bytes=0-3", "bytes=2-", "bytes=-4"]),
        }
        # An analytics range: 12 hours, whatever the step (at most 1000 of them).
        if name == "from" and ctx.get("op") == "getEventAnalytics":
            return "2030-06-01T00:00:00+02:00"
        if name == "to" and ctx.get("op") == "getEventAnalytics":
            return "2030-06-01T12:00:00+02:00"
        if name == "timezone":
            return rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"])
        return table[name]() if name in table else None


# ------------------------------------------------------------------ the world the requests act on

class World:
    def __init__(self, stack, client):
        self.stack, self.client = stack, client
        self.codes = []

    def api(self, method, path, token, body=None, content_type="application/json", query=""):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        status, _, resp = self.client.send(method, path + query, headers, data)
        if status >= 300:
            fail(f"seeding {method} {path}: {status} {resp[:300]!r}")
        return json.loads(resp) if resp else None

    def build(self):
        st = self.stack
        self.org = int(st.ctl("organizer", "create", "Conformance A"))
        self.other_org = int(st.ctl("organizer", "create", "Conformance B"))
        self.tokens = {
            "admin": st.ctl("token", "create", "--role", "admin"),
            "organizer": st.ctl("token", "create", "--role", "organizer", "--organizer",
                                str(self.org)),
            "other": st.ctl("token", "create", "--role", "organizer", "--organizer",
                            str(self.other_org)),
            "scanner": st.ctl("token", "create", "--role", "scanner", "--organizer",
                              str(self.org)),
        }
        org = self.tokens["organizer"]
        self.webhook = self.api("POST", "/v1/webhooks", org, {
            "url": "https://hooks.example.org/a", "events": ["registration.created"]})["id"]
        self.event = self.make_event(org)
        self.other_event = self.make_event(self.tokens["other"])
        self.ticket_type = self.api("POST", f"/v1/events/{self.event}/ticket-types", org,
                                    {"name": "General", "capacity": 100000})["id"]
        self.spare_ticket_type = self.new_ticket_type()
        self.spare_token = self.new_token()
        self.spare_webhook = self.new_webhook()
        self.quiet_event = self.make_event(org)
        self.api("POST", f"/v1/events/{self.other_event}/ticket-types", self.tokens["other"],
                 {"name": "General", "capacity": 1000})
        self.session = self.api("POST", f"/v1/events/{self.event}/sessions", org, {
            "title": "Opening keynote", "starts_at": FIXTURE_START,
            "ends_at": "2030-06-01T10:00:00Z"})["id"]
        doc = self.api("POST", f"/v1/events/{self.event}/content", org, b"slides, in text\n",
                       "text/plain", f"?session_id={self.session}&filename=notes.txt")
        self.document, self.content_etag = doc["id"], f'"{doc["sha256"]}"'
        self.registration, self.code = self.register()
        for _ in range(24):
            self.codes.append(self.register()[1])
        self.spare_event = self.make_event(org)
        self.message = self.make_message()
        report = self.api("POST", f"/v1/events/{self.event}/reports", org, {"kind": "attendees"})
        self.report, self.report_job = report["report_id"], report["job_id"]
        self.any_job = self.report_job
        self.delivery = int(st.sql(
            "INSERT INTO webhook_deliveries (endpoint_id, job_id, attempt, event, payload,"
            f" status_code, latency_ms) SELECT {self.webhook}, id, 1, 'registration.created',"
            " payload, 200, 12 FROM usher_jobs WHERE kind = 'notify.webhook' ORDER BY id LIMIT 1"
            " RETURNING id"))
        # Jobs for the admin job routes to act on: the registrations' own, some made dead.
        self.dead_jobs = self.ids(
            "WITH d AS (UPDATE usher_jobs SET state = 'dead', finished_at = now(),"
            " errors = '[{\"attempt\":1,\"at\":\"2030-01-01T00:00:00Z\",\"error\":\"conformance\"}]'"
            " WHERE id IN (SELECT id FROM usher_jobs WHERE state = 'available'"
            "  AND kind IN ('pdf.ticket', 'analytics.rollup') ORDER BY id LIMIT 40) RETURNING id)"
            " SELECT string_agg(id::text, ',' ORDER BY id) FROM d")
        self.available_jobs = self.ids(
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM usher_jobs"
            " WHERE state = 'available' AND kind = 'index.document' ORDER BY id LIMIT 20) j")

    def ids(self, sql):
        return [int(i) for i in self.stack.sql(sql).split(",") if i]

    def new_token(self):
        """A token of the admin routes' own: the world's tokens are never revoked."""
        return self.api("POST", "/v1/admin/tokens", self.tokens["admin"],
                        {"role": "organizer", "organizer_id": self.org, "name": "spare"})["id"]

    def new_ticket_type(self):
        return self.api("POST", f"/v1/events/{self.event}/ticket-types", self.tokens["organizer"],
                        {"name": "Spare", "capacity": 10})["id"]

    def registration_with_ticket(self):
        """A fresh confirmed registration whose ticket is recorded, as pdf.ticket would."""
        reg = self.register()[0]
        self.stack.sql(
            "INSERT INTO documents (kind, event_id, registration_id, filename, content_type,"
            f" sha256, size) VALUES ('ticket', {self.event}, {reg}, 'ticket-{reg}.pdf',"
            f" 'application/pdf', repeat('ab', 32), 10)")
        return reg

    def new_webhook(self):
        return self.api("POST", "/v1/webhooks", self.tokens["organizer"], {
            "url": "https://hooks.example.org/spare", "events": ["checkin.created"]})["id"]

    def new_session(self, event):
        return self.api("POST", f"/v1/events/{event}/sessions", self.tokens["organizer"], {
            "title": "Spare session", "starts_at": FIXTURE_START,
            "ends_at": "2030-06-01T10:00:00Z"})["id"]

    def make_event(self, token):
        return self.api("POST", "/v1/events", token, {
            "name": "Conformance conference", "starts_at": FIXTURE_START,
            "ends_at": FIXTURE_END, "timezone": "Europe/Berlin"})["id"]

    def make_message(self):
        return self.api("POST", f"/v1/events/{self.event}/messages", self.tokens["organizer"], {
            "subject": "Doors open at 8", "body": "See you there."})["message_id"]

    def make_schedule(self):
        return self.api("POST", f"/v1/events/{self.event}/schedules", self.tokens["organizer"],
                        {"action": "reminder"})["id"]

    def register(self):
        reg = self.api("POST", f"/v1/events/{self.event}/registrations", None, {
            "ticket_type_id": self.ticket_type, "name": "Zoë Attendee",
            "email": f"z{rng.randint(1, 10**9)}@example.org"})
        return reg["registration_id"], reg["ticket_code"]

    def fresh_code(self):
        return self.codes.pop() if self.codes else self.register()[1]

    def job_in(self, state):
        """A job in state (available or dead) that no request has touched yet."""
        pool = self.dead_jobs if state == "dead" else self.available_jobs
        if pool:
            return pool.pop()
        job = int(self.stack.ctl("enqueue", "analytics", "analytics.rollup",
                                 json.dumps({"event_id": self.event, "metric": "checkin"}),
                                 "--delay", "3600"))
        if state == "dead":
            self.stack.sql("UPDATE usher_jobs SET state = 'dead', finished_at = now(),"
                           " errors = '[{\"attempt\":1,\"at\":\"2030-01-01T00:00:00Z\","
                           f"\"error\":\"conformance\"}}]' WHERE id = {job}")
        return job


# ------------------------------------------------------------------ generating requests

class Generator:
    def __init__(self, spec, world, values):
        self.spec, self.w, self.v = spec, world, values

    def path_values(self, op, fresh):
        out = {}
        for p in op.path_params:
            out[p["name"]] = self.path_value(op, p, fresh)
        return out

    def path_value(self, op, p, fresh):
        w = self.w
        by_op = {
            "cancelRegistration": lambda: w.register()[0] if fresh else w.registration,
            "cancelEvent": lambda: w.make_event(w.tokens["organizer"]) if fresh else w.spare_event,
            "getMessage": lambda: w.message,
            "cancelMessage": lambda: w.make_message() if fresh else w.message,
            "deleteSchedule": lambda: w.make_schedule(),
            "adminRetryJob": lambda: w.job_in("dead") if fresh else w.any_job,
            "adminDiscardJob": lambda: w.job_in("dead") if fresh else w.any_job,
            "adminCancelJob": lambda: w.job_in("available") if fresh else w.any_job,
            "adminReplayWebhookDelivery": lambda: w.delivery,
            "getJob": lambda: w.report_job,
            "adminGetJob": lambda: w.any_job,
            "getReport": lambda: w.report,
            "getWebhook": lambda: w.webhook,
            "getContent": lambda: w.document,
            "getDashboardFile": lambda: "app.js",
            "getTicketType": lambda: w.ticket_type,
            "adminGetToken": lambda: w.spare_token,
            "adminRevokeToken": lambda: w.new_token() if fresh else w.spare_token,
            "adminGetOrganizer": lambda: w.org,
            # Deleted and cancelled ones of their own, on an event without sales.
            "deleteEvent": lambda: w.make_event(w.tokens["organizer"]),
            "deleteSession": lambda: w.new_session(w.quiet_event),
            "cancelSession": lambda: w.new_session(w.event),
            "replayWebhookDelivery": lambda: w.delivery,
            # Changed, rotated and deleted ones of their own: the world's keeps its secret.
            "updateWebhook": lambda: w.new_webhook() if fresh else w.spare_webhook,
            "deleteWebhook": lambda: w.new_webhook() if fresh else w.spare_webhook,
            "enableWebhook": lambda: w.new_webhook() if fresh else w.spare_webhook,
            "rotateWebhookSecret": lambda: w.new_webhook() if fresh else w.spare_webhook,
            "listWebhookDeliveries": lambda: w.webhook,
            "resendConfirmation": lambda: w.registration_with_ticket(),
            # Changed and closed ones of their own: the world's keeps selling.
            "updateTicketType": lambda: w.new_ticket_type() if fresh else w.spare_ticket_type,
            "closeTicketType": lambda: w.new_ticket_type() if fresh else w.spare_ticket_type,
            "reopenTicketType": lambda: w.new_ticket_type() if fresh else w.spare_ticket_type,
        }
        if op.id in by_op:
            return by_op[op.id]()
        if op.path.startswith("/v1/events/{id}"):
            return w.event
        if op.path.startswith("/v1/sessions/{id}"):
            return w.session
        if op.path.startswith("/v1/admin/queues/{name}"):
            return "analytics"
        raise AssertionError(f"no value for {op} path parameter {p['name']}")

    def ctx(self, op, role, kind):
        return {"op": op.id, "role": role, "kind": kind}

    def valid(self, op, role, kind="valid", fresh=False, minimal=False):
        ctx = self.ctx(op, role, kind)
        params = {}
        for attempt in range(60):
            params = {}
            for p in op.query + op.headers:
                chance = 0.5 if p["in"] == "query" else 0.3
                if p.get("required") or (not minimal and kind != "baseline" and rng.random() < chance) \
                        or (kind == "baseline" and p["in"] == "query" and rng.random() < 0.5):
                    params[p["name"]] = self.param_value(op, p, role, ctx)
            if op.id == "getContent" and role == "none":
                params["ticket_code"] = self.w.code
            if not op.param_errors(params):
                break
        else:
            raise AssertionError(f"{op}: no valid parameters in 60 draws: {params}")
        query = {k: v for k, v in params.items() if k in {p["name"] for p in op.query}}
        headers = {k: v for k, v in params.items() if k not in query}
        req = Request(op, role, self.path_values(op, fresh), query, headers, kind=kind)
        if op.json_body is not None:
            for attempt in range(60):
                req.body = self.v.value(op.json_body, "", ctx)
                if not self.spec.errors(op.json_body, req.body, role):
                    break
            else:
                raise AssertionError(f"{op}: no valid body in 60 draws")
            if kind == "valid" and not minimal and rng.random() < 0.2:
                req.body["x_unknown_field"] = rng.choice([1, "text", None, [1, 2], {"a": None}])
        elif op.raw_body:
            req.raw, req.content_type = b"conformance material\n", "text/plain"
            if rng.random() < 0.5:
                req.raw, req.content_type = b"%PDF-1.4\n%conformance\n", "application/pdf"
        return req

    def param_value(self, op, p, role, ctx):
        """A parameter's valid value, as text."""
        if p["name"] == "ticket_code" and op.id == "getContent":
            return self.w.code
        value = self.v.value(p["schema"], p["name"], ctx)
        return value if isinstance(value, str) else json.dumps(value)

    # --- faults -----------------------------------------------------------

    def invalid(self, op):
        """Requests with one fault each, by an allowed role (no token on a public route)."""
        roles = ["none"] if "public" in op.roles else sorted(
            r for r in ("admin", "organizer", "scanner") if op.allowed(r, {}))
        out = []
        out += self.path_faults(op, rng.choice(roles))
        out += self.query_faults(op, rng.choice(roles))
        if op.json_body is not None:
            out += self.body_faults(op, rng.choice(roles))
            out += self.body_faults(op, rng.choice(roles))
            out += self.json_faults(op, rng.choice(roles))
        return out

    def path_faults(self, op, role):
        out = []
        for p in op.path_params:
            base = self.valid(op, role)
            schema = self.spec.deref(p["schema"])
            bad = ["0", "abc", "01", "1234567890123456789", "-1"]
            if schema.get("type") == "integer":
                unknown = Request(op, role, {**base.path_values, p["name"]: FAR_ID},
                                  base.query, base.headers, base.body, base.content_type,
                                  base.raw, kind="invalid", fault=f"unknown {p['name']}")
                out.append(unknown)
            else:
                bad = ["UPPER", "a" * 64, "no%20space", "nosuchthing"]
            for value in bad:
                out.append(Request(op, role, {**base.path_values, p["name"]: value},
                                   base.query, base.headers, base.body, base.content_type,
                                   base.raw, kind="invalid", fault=f"{p['name']}={value}"))
        return out

    def query_faults(self, op, role):
        """Each query or header parameter missing, mistyped or out of range."""
        out = []
        for p in op.query + op.headers:
            schema = self.spec.deref(p["schema"])
            for fault, value in self.bad_values(schema, p["name"], text_only=True):
                base = self.valid(op, role)
                params = {**base.query, **base.headers}
                if value is MISSING:
                    params.pop(p["name"], None)
                else:
                    params[p["name"]] = value
                if not op.param_errors(params):
                    continue  # not a fault after all
                if p["in"] == "header" and not sendable(value):
                    continue
                names = {q["name"] for q in op.query}
                out.append(Request(op, role, base.path_values,
                                   {k: v for k, v in params.items() if k in names},
                                   {k: v for k, v in params.items() if k not in names},
                                   base.body, base.content_type, base.raw, kind="invalid",
                                   fault=f"{p['in']} {p['name']}: {fault}", field=p["name"]))
        for rule in op.raw.get("x-usher-parameter-rules", []):
            if "if" not in rule:
                continue
            base = self.valid(op, "admin")
            query = dict(base.query)
            for key, sub in rule["if"].get("properties", {}).items():
                query[key] = sub["const"]
            for key in rule["then"].get("required", []):
                query.pop(key, None)
                out.append(Request(op, "admin", base.path_values, query, base.headers,
                                   base.body, kind="invalid", fault=f"rule: {rule}", field=key))
        return out

    def body_faults(self, op, role):
        out = []
        schema = self.v.merged(op.json_body)
        props = schema.get("properties", {})
        required = set(schema.get("required", [])) | set(
            schema.get("x-usher-required-for", {}).get(role, []))
        for name, sub in props.items():
            for fault, value in self.bad_values(sub, name):
                base = self.valid(op, role, minimal=True)
                body = dict(base.body)
                if value is MISSING:
                    if name not in required:
                        continue
                    body.pop(name, None)
                else:
                    body[name] = value
                if not self.spec.errors(op.json_body, body, role):
                    continue  # still valid: no fault to test
                out.append(Request(op, role, base.path_values, base.query, base.headers, body,
                                   kind="invalid", fault=f"{name}: {fault}", field=name))
        for later, earlier in schema.get("x-usher-not-before", {}).items():
            base = self.valid(op, role, minimal=True)
            body = dict(base.body)
            body[earlier], body[later] = "2030-06-02T10:00:00Z", "2030-06-02T09:59:59Z"
            out.append(Request(op, role, base.path_values, base.query, base.headers, body,
                               kind="invalid", fault=f"{later} before {earlier}", field=later))
        return out

    def json_faults(self, op, role):
        base = self.valid(op, role)
        cases = [
            ("empty body", b"", None),
            ("not JSON", b"{\"a\":", None),
            ("an array", b"[]", None),
            ("a string", b"\"text\"", None),
            ("duplicate keys", b"{\"a\":1,\"a\":2}", None),
            ("nested 40 deep", b"{\"a\":" + b"[" * 40 + b"]" * 40 + b"}", None),
            ("bad UTF-8", b"{\"a\":\"\xff\"}", None),
            ("text/plain", json.dumps(base.body).encode(), "text/plain"),
            ("over api.body_max_bytes",
             json.dumps({**base.body, "padding": "x" * 70000}).encode(), None),
        ]
        out = []
        for fault, raw, ctype in cases:
            for who in (role, "none"):
                req = Request(op, who, base.path_values, base.query, base.headers, raw=raw,
                              content_type=ctype, kind="nobody", fault=fault)
                req.expect_exact = 415 if ctype else 413 if "max_bytes" in fault else 400
                out.append(req)
        return out

    def bad_values(self, schema, name, text_only=False):
        """(fault, value) pairs that break schema; MISSING for leaving it out."""
        s = self.v.merged(schema)
        kind = s.get("type")
        types = set(kind) if isinstance(kind, list) else {kind} if kind else set()
        out = [("missing", MISSING)]
        query = text_only
        if "null" not in types and not query:
            out.append(("null", None))
        if "const" in s or "enum" in s:
            out.append(("not in the enum", "no-such-word"))
        if "integer" in types:
            out += [("a string", "7") if not query else ("letters", "seven"),
                    ("a fraction", 1.5 if not query else "1.5")]
            if "minimum" in s:
                out.append(("below minimum", s["minimum"] - 1 if not query
                            else str(s["minimum"] - 1)))
            if "maximum" in s:
                out.append(("above maximum", s["maximum"] + 1 if not query
                            else str(s["maximum"] + 1)))
        if "string" in types:
            if not query:
                out += [("a number", 12), ("an object", {"a": "b"})]
            if "minLength" in s and s["minLength"] > 0:
                out.append(("too short", "x" * (s["minLength"] - 1)))
            if "maxLength" in s:
                out.append(("too long", "y" * (s["maxLength"] + 1)))
            if "x-usher-max-bytes" in s:
                out.append(("too many bytes", "é" * (s["x-usher-max-bytes"] // 2 + 1)))
            if "pattern" in s:
                for bad in ("a\u0001b", "a\u0085b", "", "not a match \"<>", "a/b", ".."):
                    out.append((f"pattern ({bad!r})", bad))
            if s.get("format") == "date-time":
                out += [("not a time", "tomorrow"), ("no T", "2030-06-01 09:00:00Z"),
                        ("no such day", "2030-02-30T09:00:00Z"),
                        ("hour 24", "2030-06-01T24:00:00Z"),
                        ("no offset", "2030-06-01T09:00:00"),
                        ("a date only", "2030-06-01")]
            if "x-usher-lookup" in s:
                out.append(("unknown", "Mars/Olympus_Mons"))
        if "boolean" in types:
            out += [("a string", "true"), ("a number", 1)]
        if "array" in types:
            out += [("a string", "x"), ("an object", {})]
            if "maxItems" in s:
                item = self.v.value(s.get("items", {}), name + "[]", {})
                out.append(("too many items", [item] * (s["maxItems"] + 1)))
            items = self.v.merged(s.get("items", {}))
            for fault, value in self.bad_values(items, name + "[]"):
                if value is not MISSING:
                    out.append((f"an item {fault}", [value]))
        return out


MISSING = object()


def sendable(value):
    """Can an HTTP client send value as a header's?"""
    if not isinstance(value, str) or "\r" in value or "\n" in value or "\0" in value:
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


# ------------------------------------------------------------------ the run

def run(spec, stack, client, world):
    checker = Checker(spec, client, world.tokens)
    gen = Generator(spec, world, Values(spec, world))
    roles = ["none", "organizer", "other", "admin", "scanner"]
    for op in spec.ops:
        for role in roles:
            req = gen.valid(op, role, kind="baseline", fresh=True)
            if role == "other" and op.path_params and "public" not in op.roles:
                req.kind = "foreign"
            checker.send(req)
            if op.method == "GET" and role in ("admin", "none"):
                head = gen.valid(op, role, kind="valid", fresh=True)
                head.method = "HEAD"
                checker.send(head)
        for role in ["organizer", "admin", "scanner", "none"]:
            if role == "none" and "public" not in op.roles:
                continue
            if not op.allowed(role, {}):
                continue
            for _ in range(RANDOM_VALID):
                checker.send(gen.valid(op, role, fresh=True))
        for req in gen.invalid(op):
            status, _, _ = checker.send(req)
            want = getattr(req, "expect_exact", None)
            if want is not None and status != want:
                checker.violation(req, status, f"expected {want}")
    # Once more every GET, now that the others have made reports, actions, deliveries...
    for op in spec.ops:
        if op.method == "GET":
            checker.send(gen.valid(op, "admin" if op.allowed("admin", {}) else "none"))
    for path in sorted({op.path for op in spec.ops}):
        op = next(o for o in spec.ops if o.path == path)
        taken = {o.method for o in spec.ops if o.path == path}
        other = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in taken)
        req = gen.valid(op, "admin")
        req.method, req.kind, req.raw, req.body = other, "method", None, None
        req.fault = f"method {other}"
        checker.send(req)
    return checker


def main(argv):
    if len(argv) != 6:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    api_path, ctl_path, spec_path, config, migrations = argv[1:]
    started = time.monotonic()
    spec = Spec(spec_path)
    stack = Stack(api_path, ctl_path, config, migrations)
    Context.timezones = frozenset(stack.sql("SELECT name FROM pg_timezone_names").split("\n"))
    stack.start()
    exit_status = None
    try:
        client = Client(stack.port)
        world = World(stack, client)
        world.build()
        checker = run(spec, stack, client, world)
    finally:
        exit_status = stack.stop()
    if exit_status != 0:
        checker.violations.append(f"usher-api exited with {exit_status}; see {stack.log}")
    missing = {op.id for op in spec.ops} - checker.ops_seen
    for op_id in sorted(missing):
        checker.violations.append(f"{op_id}: no request was sent")
    for line in checker.violations:
        print(f"violation: {line}")
    if not checker.violations:
        shutil.rmtree(stack.dir, ignore_errors=True)
    print(f"openapi conformance: {client.count} requests, {len(checker.ops_seen)} operations,"
          f" {len(checker.violations)} violations ({time.monotonic() - started:.1f} s)")
    return 1 if checker.violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
