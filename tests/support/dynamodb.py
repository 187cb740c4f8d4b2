"""A DynamoDB for tests: moto's server (moto 5.2, ``import moto`` on the test's python3) on 127.0.0.1,
with the lock table tagwarden's dynamodb:// backend uses (string hash key ``LockKey``).

    with DynamoDb() as ddb:
        ddb.url                  # "dynamodb://tagwarden-locks?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3APORT"
        ddb.lock_url(endpoint)   # the same table reached through another endpoint (e.g. a FaultProxy in front)
        ddb.env()                # what a tagwarden process needs: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                                 # AWS_REGION, AWS_EC2_METADATA_DISABLED (tw.clean_env strips AWS_*: pass it)
        ddb.items()              # every item of the lock table, plain values: [{"LockKey": "...", "ExpiresAt": 17..}]
        ddb.item(key)            # one item (consistent read) or None
        ddb.put_item({...})      # writes an item as is (e.g. a stale lock of a dead holder)
        ddb.client()             # a botocore DynamoDB client for anything else
        ddb.calls("PutItem")     # [(operation, HTTP status)] of every request moto answered (this one's)

What runs: moto's WSGI app (what ``moto_server`` serves) in a child process started by a small
launcher that binds 127.0.0.1 port 0 and prints the port the kernel picked (as ecr_testbed.py does:
a port picked in advance could be taken by another session's server before ours binds it). The
child runs in its own session; ``stop`` (or leaving the ``with`` block) kills it, and it exits by
itself when the test process dies (it polls its parent). moto dispatches by the SigV4 credential
scope, so this one server answers DynamoDB for any region; the table exists only in ``region``.

moto's DynamoDB is not thread-safe: a conditional PutItem checks the condition and then writes, and
two threads of its threaded server can both pass ``attribute_not_exists`` for the same key. Real
DynamoDB applies a conditional write atomically, so the launcher serves one request at a time
(a lock around the app); without it a 16-process lock race could crown two winners because of moto.

The table is created here with botocore (PAY_PER_REQUEST), unless ``DynamoDb(create_table=False)``:
then only ``tagwarden lock init`` (or the test) creates it.
"""

import http.client
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

from procs import stop_process_group

DEFAULT_TABLE = "tagwarden-locks"
DEFAULT_REGION = "us-east-1"
ACCESS_KEY_ID = "AKIATAGWARDENTEST01"
SECRET_ACCESS_KEY = "tagwarden-test-secret-key/not-a-real-one"

# moto's WSGI app on 127.0.0.1:0, one request at a time; prints its port, exits if its parent dies.
_LAUNCHER = r"""
import os, signal, sys, threading, time
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
serial = threading.Lock()
def serialized(environ, start_response):
    target = environ.get("HTTP_X_AMZ_TARGET", "-")
    status = []
    def recording_start_response(line, headers, *rest):
        status.append(line.split(" ", 1)[0])
        return start_response(line, headers, *rest)
    with serial:
        response = app(environ, recording_start_response)
        try:
            body = b"".join(response)
        finally:
            if hasattr(response, "close"):
                response.close()
        sys.stderr.write(f"tw-ddb-call {target.rsplit('.', 1)[-1]} {status[0] if status else '-'}\n")
        sys.stderr.flush()
    return [body]
server = make_server("127.0.0.1", 0, serialized, threaded=True)
os.environ["MOTO_PORT"] = str(server.port)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
def orphaned(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=orphaned, daemon=True).start()
sys.stdout.write(f"{server.port}\n")
sys.stdout.flush()
os.dup2(2, 1)
server.serve_forever()
"""


class DynamoDbError(RuntimeError):
    pass


def _plain(value):
    """A DynamoDB attribute value ({"S": ..} / {"N": ..} / ...) as a Python value."""
    (kind, inner), = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        number = float(inner)
        return int(number) if number.is_integer() else number
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    return inner


def _typed(value):
    """A Python value as a DynamoDB attribute value (str -> S, int/float -> N, bool -> BOOL)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"no DynamoDB type for {value!r}")


class DynamoDb:
    """moto's DynamoDB on 127.0.0.1:<port 0> with the lock table; use as a context manager."""

    def __init__(self, table=DEFAULT_TABLE, region=DEFAULT_REGION, start_timeout=60.0, create_table=True):
        self.table = table
        self.with_table = create_table
        self.region = region
        self.start_timeout = start_timeout
        self.port = None
        self.process = None
        self.workdir = None
        self.log_file = None
        self._client = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.workdir = tempfile.mkdtemp(prefix="tw-dynamodb-")
        self.log_file = os.path.join(self.workdir, "moto.log")
        try:
            self._spawn()
            self._wait_for_port()
            if self.with_table:
                self.create_table()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", _LAUNCHER], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True)

    def _wait_for_port(self):
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
            elif self.process.poll() is not None:
                break
        if not line.strip().isdigit():
            raise DynamoDbError(f"moto did not start (python {sys.executable} needs moto[server], "
                                f"e.g. pip install 'moto[server]'):\n{self.log_text()}")
        self.port = int(line.strip())
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/moto-api/", headers={"Host": self.host})
                conn.getresponse().read()
                conn.close()
                return
            except (OSError, http.client.HTTPException):
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise DynamoDbError(f"moto did not answer on {self.host}:\n{self.log_text()}")

    def stop(self):
        if self.process is not None:
            stop_process_group(self.process)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None
        self._client = None
        if self.workdir and os.path.isdir(self.workdir) and not os.environ.get("TW_KEEP_DYNAMODB"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def calls(self, operation=None):
        """[(operation, status)] of the requests moto answered, in order (from the launcher's log):
        ("PutItem", 200), ("PutItem", 400) for a failed condition, ...; only ``operation`` when given."""
        found = []
        try:
            with open(self.log_file, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == "tw-ddb-call":
                        found.append((parts[1], int(parts[2]) if parts[2].isdigit() else None))
        except (OSError, TypeError):
            pass
        return [c for c in found if operation is None or c[0] == operation]

    def log_text(self):
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except (OSError, TypeError):
            return ""

    # -- addresses and environment ---------------------------------------------------------------

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self):
        return f"http://{self.host}"

    def lock_url(self, endpoint=None, table=None, region=None):
        """dynamodb://TABLE?region=R&endpoint=URL (the endpoint percent-encoded, as the docs show)."""
        endpoint = endpoint or self.endpoint
        if "://" not in endpoint:
            endpoint = "http://" + endpoint
        return (f"dynamodb://{table or self.table}?region={region or self.region}"
                f"&endpoint={urllib.parse.quote(endpoint, safe='')}")

    @property
    def url(self):
        """The lock URL tagwarden takes for this table."""
        return self.lock_url()

    def env(self):
        """Credentials (static keys; moto checks none) and region for a tagwarden process."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # -- the table -------------------------------------------------------------------------------

    def client(self):
        """A botocore DynamoDB client for this server and region."""
        if self._client is None:
            import botocore.config
            import botocore.session
            session = botocore.session.Session()
            self._client = session.create_client(
                "dynamodb", region_name=self.region, endpoint_url=self.endpoint,
                aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                config=botocore.config.Config(retries={"total_max_attempts": 1}))
        return self._client

    def create_table(self, table=None):
        """The lock table: LockKey (S) as hash key, on-demand billing; waits until it is ACTIVE."""
        name = table or self.table
        self.client().create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "LockKey", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockKey", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self.client().describe_table(TableName=name)["Table"]["TableStatus"]
            if status == "ACTIVE":
                return
            time.sleep(0.1)
        raise DynamoDbError(f"table {name} did not become ACTIVE")

    def time_to_live(self, table=None):
        """The table's TimeToLiveDescription: {"TimeToLiveStatus": "ENABLED", "AttributeName": "ExpiresAt"}."""
        return self.client().describe_time_to_live(TableName=table or self.table)["TimeToLiveDescription"]

    def tables(self):
        return self.client().list_tables()["TableNames"]

    def items(self, table=None):
        """Every item of the table (consistent scan), as dicts of plain values, sorted by LockKey."""
        found = []
        kwargs = {"TableName": table or self.table, "ConsistentRead": True}
        while True:
            page = self.client().scan(**kwargs)
            found.extend({k: _plain(v) for k, v in item.items()} for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda item: item.get("LockKey", ""))

    def keys(self, table=None):
        return [item["LockKey"] for item in self.items(table)]

    def item(self, key, table=None):
        """The item whose LockKey is ``key`` (consistent read), plain values; None when absent."""
        answer = self.client().get_item(TableName=table or self.table, Key={"LockKey": {"S": key}},
                                        ConsistentRead=True)
        item = answer.get("Item")
        return {k: _plain(v) for k, v in item.items()} if item else None

    def put_item(self, item, table=None):
        """Writes ``item`` (plain values: str -> S, numbers -> N) unconditionally."""
        self.client().put_item(TableName=table or self.table, Item={k: _typed(v) for k, v in item.items()})

    def delete_item(self, key, table=None):
        self.client().delete_item(TableName=table or self.table, Key={"LockKey": {"S": key}})


if __name__ == "__main__":
    import json

    with DynamoDb() as ddb:
        print(json.dumps({"url": ddb.url, "endpoint": ddb.endpoint, "pid": ddb.process.pid, "env": ddb.env()}),
              flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        while not stop and ddb.process.poll() is None:
            time.sleep(0.2)
