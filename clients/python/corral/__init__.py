"""Corral's Python client: the generated gRPC stubs (corral.v1) and a small wrapper.

    import corral

    with corral.Client("127.0.0.1:50051") as client:
        for event in client.execute(corral.job(["echo", "hi"])):
            ...
        result = client.run(corral.job(["sh", "-c", "echo hi; exit 3"]))
        print(result.stdout, result.outcome.exit_code)

Every message type is in corral.v1.execution_pb2, re-exported here as `pb`.
"""

from __future__ import annotations

import dataclasses
import queue
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import grpc

from corral.v1 import execution_pb2 as pb
from corral.v1 import execution_pb2_grpc as pb_grpc

__all__ = ["Client", "Interaction", "Result", "job", "pb"]

# The server takes requests up to 80 MiB (input files and stdin travel in them).
_MAX_SEND_BYTES = 80 * 1024 * 1024


def job(
    argv: Sequence[str],
    *,
    profile: str = "default",
    stdin: bytes = b"",
    env: Optional[Mapping[str, str]] = None,
    files: Optional[Mapping[str, bytes]] = None,
    limits: Optional[pb.Limits] = None,
) -> pb.ExecuteRequest:
    """A one-step job: `argv` in `profile`, with the given stdin, environment and files."""
    return pb.ExecuteRequest(
        profile=profile,
        files=[pb.InputFile(path=p, content=c) for p, c in (files or {}).items()],
        steps=[pb.Step(argv=list(argv), env=dict(env or {}), stdin=stdin, limits=limits)],
    )


@dataclasses.dataclass
class Result:
    """A job run to its end: its output, and its last event."""

    stdout: bytes
    stderr: bytes
    finished: pb.JobFinished

    @property
    def outcome(self) -> pb.Outcome:
        return self.finished.outcome


class Interaction:
    """An Interact call: `write` sends stdin, `close_stdin` ends it, iterating gives the events."""

    def __init__(self, call: Iterator[pb.ExecuteResponse], inbox: "queue.Queue[Optional[pb.InteractRequest]]"):
        self._call = call
        self._inbox = inbox

    def write(self, data: bytes) -> None:
        self._inbox.put(pb.InteractRequest(stdin=data))

    def close_stdin(self) -> None:
        self._inbox.put(pb.InteractRequest(close_stdin=pb.StdinClose()))
        self._inbox.put(None)

    def cancel(self) -> None:
        self._call.cancel()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[pb.ExecuteResponse]:
        return iter(self._call)


class Client:
    """A connection to one Corral server; a context manager that closes it."""

    def __init__(
        self,
        address: str,
        *,
        token: Optional[str] = None,
        root_certificates: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
    ):
        options = [("grpc.max_send_message_length", _MAX_SEND_BYTES), ("grpc.max_receive_message_length", -1)]
        if root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self._channel = grpc.secure_channel(address, creds, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._stub = pb_grpc.ExecutionServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def execute(self, request: pb.ExecuteRequest, *, timeout: Optional[float] = None) -> Iterator[pb.ExecuteResponse]:
        """Runs a job; yields its events in order, the last being `finished`. Breaking off the
        iteration (or `.cancel()` on it) cancels the job. Service failures raise grpc.RpcError."""
        return self._stub.Execute(request, timeout=timeout, metadata=self._metadata)

    def run(self, request: pb.ExecuteRequest, *, timeout: Optional[float] = None) -> Result:
        """Runs a job to its end and gathers its output."""
        out: list[bytes] = []
        err: list[bytes] = []
        finished: Optional[pb.JobFinished] = None
        for event in self.execute(request, timeout=timeout):
            kind = event.WhichOneof("event")
            if kind == "output":
                (err if event.output.stream == pb.STREAM_STDERR else out).append(event.output.data)
            elif kind == "finished":
                finished = event.finished
        if finished is None:
            raise RuntimeError("the stream ended without a finished event")
        return Result(b"".join(out), b"".join(err), finished)

    def interact(self, request: pb.ExecuteRequest, *, timeout: Optional[float] = None) -> Interaction:
        """Runs a job whose last step reads stdin while it runs."""
        inbox: "queue.Queue[Optional[pb.InteractRequest]]" = queue.Queue()
        inbox.put(pb.InteractRequest(job=request))

        def messages() -> Iterable[pb.InteractRequest]:
            while (m := inbox.get()) is not None:
                yield m

        call = self._stub.Interact(messages(), timeout=timeout, metadata=self._metadata)
        return Interaction(call, inbox)

    def submit(self, request: pb.ExecuteRequest, *, timeout: Optional[float] = None) -> str:
        """Queues a job that outlives the call; returns its id."""
        return self._stub.Submit(request, timeout=timeout, metadata=self._metadata).job_id

    def watch(self, job_id: str, *, from_offset: int = 0) -> Iterator[pb.WatchResponse]:
        """A submitted job's events from an offset, live until it ends."""
        return self._stub.Watch(pb.WatchRequest(job_id=job_id, from_offset=from_offset), metadata=self._metadata)

    def cancel(self, job_id: str) -> None:
        """Stops a submitted job."""
        self._stub.Cancel(pb.CancelRequest(job_id=job_id), metadata=self._metadata)

    def server_info(self) -> pb.GetServerInfoResponse:
        return self._stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=self._metadata)

    def list_profiles(self) -> pb.ListProfilesResponse:
        return self._stub.ListProfiles(pb.ListProfilesRequest(), metadata=self._metadata)
