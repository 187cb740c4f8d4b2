"""Runs a composite GitHub Action's ``run:`` steps as a runner does, for tests.

    result = run_composite("ci-templates/github-action/action.yml", {"repository": ...}, workdir, env)
    result.outputs["digest"], result.summary, result.masks, result.steps["run"]

What it does as the runner does (docs: "Metadata syntax for GitHub Actions", "Workflow commands"):
- inputs: the declared defaults, overridden by the given ones; an input the action does not declare or
  a required input left out is an error (the runner warns; a test wants to know);
- ``${{ … }}`` in ``run``, ``env``, ``working-directory``, ``if`` and the outputs' ``value``:
  contexts ``inputs``, ``steps.<id>.outputs``/``outcome``, ``github`` (``action_path``, ``sha``, …),
  ``runner`` (``os``, ``arch``, ``temp``), ``env``; string literals, ``==``, ``!=``, ``&&``, ``||``, ``!``,
  parentheses, ``success()``, ``failure()``, ``always()``. Anything else is an error, not a guess;
- each step: ``shell: bash`` is ``bash --noprofile --norc -eo pipefail FILE``; a fresh
  ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY`` file per step (the runner's), ``$GITHUB_ENV`` and
  ``$GITHUB_PATH`` applied to the following steps, ``RUNNER_TEMP`` a directory of the run;
- ``$GITHUB_OUTPUT``/``$GITHUB_ENV`` in both forms, ``name=value`` and ``name<<DELIMITER`` (a missing
  closing delimiter is an error, as for the runner);
- ``::add-mask::VALUE`` lines on stdout are collected in ``masks``, in the order printed, with the
  position in stdout, so a test can check a secret was masked before any use;
- ``uses:`` steps are skipped (recorded in ``skipped``), their outputs empty: the test has no network.
"""

import http.server
import json
import os
import re
import subprocess
import tempfile
import threading

import yaml


class ActionError(RuntimeError):
    pass


# -- expressions ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))|"
                    r"(?P<num>\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*(?:\(\))?))")


def _tokens(expr):
    pos, out = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ActionError(f"expression not understood by the test runner: {expr!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


class _Parser:
    def __init__(self, tokens, lookup, status):
        self.t, self.i, self.lookup, self.status = tokens, 0, lookup, status

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self):
        value = self.or_()
        if self.i != len(self.t):
            raise ActionError(f"unexpected {self.peek()!r} in expression")
        return value

    def or_(self):
        left = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            left = left if _truthy(left) else right
        return left

    def and_(self):
        left = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.cmp()
            left = right if _truthy(left) else left
        return left

    def cmp(self):
        left = self.unary()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            right = self.unary()
            equal = _coerce(left) == _coerce(right)
            left = equal if op == "==" else not equal
        return left

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.unary())
        if self.peek() == ("op", "("):
            self.take()
            value = self.or_()
            if self.take() != ("op", ")"):
                raise ActionError("missing ) in expression")
            return value
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind == "ident":
            if text in ("true", "false"):
                return text == "true"
            if text == "null":
                return None
            if text in ("success()", "failure()", "always()", "cancelled()"):
                return {"success()": self.status == "success", "failure()": self.status == "failure",
                        "always()": True, "cancelled()": False}[text]
            if text.endswith("()"):
                raise ActionError(f"function {text} is not supported by the test runner")
            return self.lookup(text)
        raise ActionError(f"unexpected token {text!r} in expression")


def _truthy(v):
    return v not in (None, False, "", 0, 0.0)


def _coerce(v):
    # GitHub compares strings case-insensitively; numbers and booleans as numbers.
    if isinstance(v, str):
        return v.lower()
    if isinstance(v, bool):
        return float(v)
    return v


def _to_text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# -- file commands -------------------------------------------------------------------------------

def parse_file_command(text, what):
    """{name: value} from a $GITHUB_OUTPUT / $GITHUB_ENV file (both forms)."""
    values = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ActionError(f"{what}: matching delimiter not found: {delimiter!r}")
            values[name] = "\n".join(body)
            i += 1
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
            i += 1
        else:
            raise ActionError(f"{what}: invalid line {line!r}")
    return values


# -- the run -------------------------------------------------------------------------------------

class StepResult:
    def __init__(self, step_id, name):
        self.id, self.name = step_id, name
        self.outcome = "skipped"
        self.returncode = None
        self.stdout = self.stderr = ""
        self.outputs = {}
        self.output_file_text = ""
        self.summary = ""
        self.script = ""


class CompositeResult:
    def __init__(self):
        self.steps = {}       # id -> StepResult (steps without id get "__N")
        self.order = []
        self.skipped = []     # uses: steps and steps whose if: was false, by id/name
        self.outputs = {}
        self.summary = ""
        self.masks = []       # (position in the concatenated stdout, value)
        self.stdout = ""
        self.stderr = ""
        self.env_file = {}    # what the steps wrote to $GITHUB_ENV
        self.path_file = []   # what they wrote to $GITHUB_PATH
        self.status = "success"

    @property
    def failed(self):
        return self.status == "failure"


def run_composite(action_file, inputs, workspace, env, runner_temp=None, github=None, timeout=300, stop_after=None):
    """Runs the action's steps in ``workspace`` with ``env`` (the job's environment).

    ``github``: extra values of the github context (sha, repository, ...); ``stop_after``: the id of the
    last step to run. Returns CompositeResult.
    """
    with open(action_file, encoding="utf-8") as f:
        action = yaml.safe_load(f)
    if action.get("runs", {}).get("using") != "composite":
        raise ActionError(f"{action_file} is not a composite action")
    declared = action.get("inputs") or {}
    for name in inputs:
        if name not in declared:
            raise ActionError(f"input {name!r} is not declared by {action_file}")
    values = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in inputs:
            values[name] = str(inputs[name])
        elif spec.get("required") and "default" not in spec:
            raise ActionError(f"required input {name!r} not given")
        else:
            values[name] = _to_text(spec.get("default", ""))

    runner_temp = runner_temp or tempfile.mkdtemp(prefix="runner-temp-")
    action_path = os.path.dirname(os.path.abspath(action_file))
    result = CompositeResult()
    job_env = dict(env)
    job_env.setdefault("RUNNER_TEMP", runner_temp)
    job_env.setdefault("RUNNER_OS", "Linux")
    job_env.setdefault("RUNNER_ARCH", "X64")
    job_env.setdefault("GITHUB_WORKSPACE", workspace)
    job_env["GITHUB_ACTION_PATH"] = action_path
    gh = {"action_path": action_path, "workspace": workspace, "sha": job_env.get("GITHUB_SHA", ""),
          "repository": job_env.get("GITHUB_REPOSITORY", ""), "run_id": job_env.get("GITHUB_RUN_ID", ""),
          "server_url": job_env.get("GITHUB_SERVER_URL", ""), "run_number": job_env.get("GITHUB_RUN_NUMBER", "")}
    gh.update(github or {})
    env_file = os.path.join(runner_temp, "_github_env")
    path_file = os.path.join(runner_temp, "_github_path")

    def lookup(path):
        parts = path.split(".")
        head = parts[0]
        if head == "inputs" and len(parts) == 2:
            if parts[1] not in values:
                raise ActionError(f"inputs.{parts[1]} is not an input of the action")
            return values[parts[1]]
        if head == "steps" and len(parts) >= 3:
            step = result.steps.get(parts[1])
            if step is None:
                return None
            if parts[2] == "outputs" and len(parts) == 4:
                return step.outputs.get(parts[3], "")
            if parts[2] in ("outcome", "conclusion") and len(parts) == 3:
                return step.outcome
        if head == "github" and len(parts) == 2:
            return gh.get(parts[1], "")
        if head == "runner" and len(parts) == 2:
            return {"os": job_env["RUNNER_OS"], "arch": job_env["RUNNER_ARCH"], "temp": runner_temp}.get(parts[1], "")
        if head == "env" and len(parts) == 2:
            return step_env_view.get(parts[1], "")
        raise ActionError(f"context {path!r} is not supported by the test runner")

    def evaluate(expr):
        return _Parser(_tokens(expr), lookup, result.status).parse()

    def expand(text):
        if text is None:
            return None
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _to_text(evaluate(m.group(1))), str(text), flags=re.S)

    extra_path = []
    step_env_view = dict(job_env)
    for index, step in enumerate(action["runs"]["steps"]):
        step_id = step.get("id") or f"__{index}"
        sr = StepResult(step_id, step.get("name") or step.get("uses") or step_id)
        result.steps[step_id] = sr
        result.order.append(step_id)
        condition = step.get("if")
        if condition is None:
            run_it = result.status == "success"
        else:
            condition = str(condition).strip()
            if condition.startswith("${{") and condition.endswith("}}"):
                condition = condition[3:-2]
            has_status = re.search(r"\b(success|failure|always|cancelled)\(\)", condition)
            run_it = _truthy(evaluate(condition)) and (has_status or result.status == "success")
        if "uses" in step:
            result.skipped.append(step_id)
            continue
        if not run_it:
            result.skipped.append(step_id)
            continue
        if step.get("shell") != "bash":
            raise ActionError(f"step {step_id}: composite run steps need shell: bash here, got {step.get('shell')!r}")
        step_env = dict(job_env)
        step_env.update(parse_file_command(_read(env_file), "GITHUB_ENV"))
        if extra_path:
            step_env["PATH"] = os.pathsep.join(reversed(extra_path)) + os.pathsep + step_env.get("PATH", "")
        step_env_view = dict(step_env)
        for key, value in (step.get("env") or {}).items():
            step_env[key] = expand(value)
        step_env_view = dict(step_env)
        output_file = os.path.join(runner_temp, f"_output_{step_id}")
        summary_file = os.path.join(runner_temp, f"_summary_{step_id}")
        for path in (output_file, summary_file):
            open(path, "w").close()
        step_env.update({"GITHUB_OUTPUT": output_file, "GITHUB_STEP_SUMMARY": summary_file,
                         "GITHUB_ENV": env_file, "GITHUB_PATH": path_file, "GITHUB_ACTIONS": "true",
                         "CI": "true"})
        script = expand(step["run"])
        sr.script = script
        script_file = os.path.join(runner_temp, f"_script_{step_id}.sh")
        with open(script_file, "w", encoding="utf-8") as f:
            f.write(script)
        cwd = expand(step.get("working-directory")) or "."
        cwd = cwd if os.path.isabs(cwd) else os.path.join(workspace, cwd)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", script_file], cwd=cwd,
                              env=step_env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        sr.returncode, sr.stdout, sr.stderr = proc.returncode, proc.stdout, proc.stderr
        sr.outcome = "success" if proc.returncode == 0 else "failure"
        for m in re.finditer(r"^::add-mask::(.*)$", proc.stdout, re.M):
            result.masks.append((len(result.stdout) + m.start(), m.group(1)))
        result.stdout += proc.stdout
        result.stderr += proc.stderr
        sr.output_file_text = _read(output_file)
        sr.outputs = parse_file_command(sr.output_file_text, f"GITHUB_OUTPUT of step {step_id}")
        sr.summary = _read(summary_file)
        result.summary += sr.summary
        for line in _read(path_file).splitlines():
            if line and line not in extra_path:
                extra_path.append(line)
        if proc.returncode != 0:
            result.status = "failure"
        if stop_after is not None and step_id == stop_after:
            break
    result.env_file = parse_file_command(_read(env_file), "GITHUB_ENV")
    result.path_file = list(extra_path)
    for name, spec in (action.get("outputs") or {}).items():
        result.outputs[name] = _to_text(expand(spec.get("value", "")))
    return result


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class OidcTokenServer:
    """Plays the runner's OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): answers
    ``{"value": token}`` to a GET carrying ``Authorization: bearer <request_token>``, 401 otherwise;
    ``requests`` lists (path, Authorization) of every request.

        with OidcTokenServer("request-token", "eyJ...") as server:
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = server.url
    """

    def __init__(self, request_token, token):
        self.request_token, self.token, self.requests = request_token, token, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"bearer {outer.request_token}":
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"value": outer.token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token?api-version=2.0"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
