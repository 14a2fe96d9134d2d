"""The Python client against a real Corral on loopback: CORRAL_TEST_ADDRESS names it (the
TypeScript suite starts the service and runs this file; see test/clients/python.test.ts)."""

import os

import grpc
import pytest

import corral
from corral import pb

ADDRESS = os.environ.get("CORRAL_TEST_ADDRESS")
pytestmark = pytest.mark.skipif(not ADDRESS, reason="CORRAL_TEST_ADDRESS names no server")


@pytest.fixture
def client():
    with corral.Client(ADDRESS) as c:
        yield c


def test_run_gathers_output_and_outcome(client):
    result = client.run(corral.job(["sh", "-c", "echo hi; echo oops >&2; exit 3"]))
    assert result.stdout == b"hi\n"
    assert result.stderr == b"oops\n"
    assert result.outcome.status == pb.STATUS_EXITED_NONZERO
    assert result.outcome.exit_code == 3
    assert result.finished.usage.stdout_bytes == 3


def test_execute_yields_events_in_order(client):
    kinds = [e.WhichOneof("event") for e in client.execute(corral.job(["echo", "x"]))]
    assert kinds[0] == "queued"
    assert kinds[-1] == "finished"
    assert "output" in kinds


def test_files_stdin_and_limits(client):
    request = corral.job(
        ["sh", "-c", "cat in.txt; cat"],
        files={"in.txt": b"from a file\n"},
        stdin=b"from stdin\n",
        limits=pb.Limits(wall_time_ms=5000),
    )
    assert client.run(request).stdout == b"from a file\nfrom stdin\n"
    slow = client.run(corral.job(["sleep", "5"], limits=pb.Limits(wall_time_ms=300)))
    assert slow.outcome.status == pb.STATUS_WALL_TIME_LIMIT


def test_a_bad_request_raises_invalid_argument_naming_the_field(client):
    with pytest.raises(grpc.RpcError) as err:
        client.run(corral.job([""]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "steps[0].argv[0]" in err.value.details()


def test_interact_plays_a_round_of_echo(client):
    run = client.interact(corral.job(["sh", "-c", "read a; echo got $a"]))
    run.write(b"one\n")
    run.close_stdin()
    out = b"".join(e.output.data for e in run if e.WhichOneof("event") == "output")
    assert out == b"got one\n"


def test_submit_watch_cancel(client):
    job_id = client.submit(corral.job(["sh", "-c", "echo started; sleep 30"]))
    events = client.watch(job_id)
    for item in events:
        if item.WhichOneof("item") == "event" and item.event.WhichOneof("event") == "output":
            assert item.event.output.data == b"started\n"
            break
    client.cancel(job_id)
    last = [i for i in events if i.WhichOneof("item") == "event"][-1]
    assert last.event.finished.outcome.status == pb.STATUS_CANCELLED


def test_profiles_and_server_info(client):
    names = [p.name for p in client.list_profiles().profiles]
    assert "default" in names and "python3" in names
    assert client.server_info().concurrency >= 1
