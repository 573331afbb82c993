"""On-demand execution with parameters (docs/PROTOCOL.md section 8.8): a USP stream's
JSON parameters reach an exec: program as FIVE_PARAMETERS, for the names its service
lists, and anything else is refused before the program starts.

The USP paper, 7.1 "On-Demand Execution": "The message content could include a "payload"
property that is simply properly formatted JSON. The JSON payload could then be attached
to the stream object that is passed to the application, providing parameters for the
execution of the application."  fived calls the payload a stream's "parameters"."""

import json

import pytest

from conftest import wait_for
from uspwire import UspClient, initialize, stream

PROGRAM = """#!/bin/sh
echo started >> {runs}/started
printf '%s|%s\\n' "${{FIVE_PARAMETERS-unset}}" "$FIVE_SERVICE"
"""


@pytest.fixture
def server(fived, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o777)
    prog = tmp_path / "show"
    prog.write_text(PROGRAM.format(runs=runs))
    prog.chmod(0o755)
    f = fived("[service:run]\nbackend = exec:%s\n"
              "parameters = count:integer name:string verbose:boolean opts:json\n"
              "[service:bare]\nbackend = exec:%s\n"
              "[service:echo]\nbackend = builtin:echo\n" % (prog, prog))
    f.runs = runs / "started"
    return f


def ask(f, *streams, **kw):
    c = UspClient(f.port)
    c.send(initialize(*streams, **kw))
    return c


def test_parameters_reach_the_program(server):
    """The program gets the object as fived checked it: compact, names sorted, ASCII."""
    params = {"name": "caf\u00e9", "count": 3, "opts": {"depth": [1, 2]}, "verbose": True}
    with ask(server, stream("run", parameters=params)) as c:
        c.expect("connect", application="run")
        out = c.rest()
    assert out == (b'{"count":3,"name":"caf\\u00E9","opts":{"depth":[1,2]},"verbose":true}'
                   b"|run\n")
    assert json.loads(out.split(b"|")[0]) == params
    with ask(server, "run") as c:
        c.expect("connect")
        assert c.rest() == b"unset|run\n"
    assert server.runs.read_text().count("started") == 2


def test_parameters_keep_escapes_and_control_characters(server):
    """Backslashes, quotes and control characters arrive escaped, as JSON: the value the
    program decodes is the one the client sent, whatever a shell's echo makes of it."""
    params = {"name": 'a\\b\\u0022 q\\" "\n\t\x01', "opts": ["\\", "}", {"k": "\\n"}]}
    with ask(server, stream("run", parameters=params)) as c:
        c.expect("connect", application="run")
        out = c.rest()
    assert json.loads(out.rsplit(b"|", 1)[0]) == params
    assert b"\n" not in out[:-len(b"|run\n")] and b"\t" not in out


@pytest.mark.parametrize("application, params, error", [
    ("run", {"other": 1}, "parameter not accepted"),
    ("run", {"count": "3"}, "parameter of the wrong type"),
    ("run", {"count": 1.5}, "parameter of the wrong type"),
    ("run", {"verbose": None}, "parameter of the wrong type"),
    ("run", {"name": "x" * 1100}, "malformed message: streams: parameters too large"),
    ("run", {"opts": {"a": [[1]]}}, "malformed message: streams: parameters too deep"),
    ("run", {"opts": {"a": [[[[1]]]]}}, "malformed message: nested more than 7 levels"),
    ("run", {"Name": "x"}, "malformed message: streams: invalid parameter name"),
    ("run", {"name": "a\x7fb"}, "malformed message: streams: parameters: a DEL character"),
    ("run", [1], "malformed message: streams: parameters: expected an object"),
    ("bare", {}, "parameters not accepted"),
    ("echo", {"count": 1}, "parameters not accepted"),
])
def test_refused_before_the_program_starts(server, application, params, error):
    with ask(server, stream(application, parameters=params)) as c:
        c.send(b"early bytes")
        c.expect_error(error)
    reason = "malformed message" if error.startswith("malformed message") else error
    wait_for(lambda: [r["reason"] for r in server.events("refused")] == [reason],
             what="the refusal in the audit log")
    assert not server.runs.exists()


def test_refused_in_every_stream_and_in_framed_mode(server):
    """A second stream's parameters are judged too (its token answer says so), and framed
    mode, whose streams open without them, refuses any."""
    with ask(server, "echo", stream("run", parameters={"other": 1})) as c:
        msg = c.expect("token")
        assert msg["streams"] == [{"application": "run", "error": "parameter not accepted"}]
        c.expect("connect", application="echo")
    msg = initialize(stream("run", parameters={"count": 1}))
    msg["multiplex"] = True
    with UspClient(server.port) as c:
        c.send(msg)
        c.expect_error("malformed message: parameters go with a stream of its own connection")
    assert not server.runs.exists()
