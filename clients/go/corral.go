// Package corral is a small client for Corral, the rootless code-execution sandbox service.
//
// The generated gRPC stubs are in package corralv1 (made from proto/corral/v1 by buf); this
// package adds a connection helper, a one-step job builder and Run, which gathers a job's output
// and its final event. A program's own fate is data (Result.Finished.Outcome); a failure of the
// service is a gRPC status error (codes.InvalidArgument names the field).
package corral

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/corral-dev/corral/clients/go/corralv1"
)

// maxSendBytes is the biggest request sent: input files and stdin travel in it.
const maxSendBytes = 80 << 20

// Client is a connection to one Corral server.
type Client struct {
	conn  *grpc.ClientConn
	token string
	// Stub is the generated client, for the calls this package does not wrap.
	Stub pb.ExecutionServiceClient
}

// Option configures Dial.
type Option func(*dialConfig)

type dialConfig struct {
	token string
	creds credentials.TransportCredentials
}

// WithToken sends `authorization: Bearer <token>` on every call.
func WithToken(token string) Option { return func(c *dialConfig) { c.token = token } }

// WithTLS uses TLS (or mutual TLS) instead of plaintext, which is for loopback only.
func WithTLS(creds credentials.TransportCredentials) Option {
	return func(c *dialConfig) { c.creds = creds }
}

// Dial connects (lazily) to a server at HOST:PORT.
func Dial(address string, opts ...Option) (*Client, error) {
	cfg := dialConfig{creds: insecure.NewCredentials()}
	for _, o := range opts {
		o(&cfg)
	}
	conn, err := grpc.Dial(address,
		grpc.WithTransportCredentials(cfg.creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxSendBytes), grpc.MaxCallRecvMsgSize(1<<31-1)),
	)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, token: cfg.token, Stub: pb.NewExecutionServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Context adds the client's credentials to ctx; use it for calls made through Stub.
func (c *Client) Context(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// Job is a one-step job: argv in the named profile, with stdin.
func Job(profile string, stdin []byte, argv ...string) *pb.ExecuteRequest {
	return &pb.ExecuteRequest{Profile: profile, Steps: []*pb.Step{{Argv: argv, Stdin: stdin}}}
}

// Result is a job run to its end: its output and its last event.
type Result struct {
	Stdout, Stderr []byte
	Finished       *pb.JobFinished
}

// Execute runs a job and calls onEvent for each event in order, the last being `finished`.
// Cancelling ctx cancels the job.
func (c *Client) Execute(ctx context.Context, req *pb.ExecuteRequest, onEvent func(*pb.ExecuteResponse) error) error {
	stream, err := c.Stub.Execute(c.Context(ctx), req)
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := onEvent(ev); err != nil {
			return err
		}
	}
}

// Run runs a job to its end and gathers its output.
func (c *Client) Run(ctx context.Context, req *pb.ExecuteRequest) (*Result, error) {
	r := &Result{}
	err := c.Execute(ctx, req, func(ev *pb.ExecuteResponse) error {
		switch e := ev.Event.(type) {
		case *pb.ExecuteResponse_Output:
			if e.Output.Stream == pb.Stream_STREAM_STDERR {
				r.Stderr = append(r.Stderr, e.Output.Data...)
			} else {
				r.Stdout = append(r.Stdout, e.Output.Data...)
			}
		case *pb.ExecuteResponse_Finished:
			r.Finished = e.Finished
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.Finished == nil {
		return nil, errors.New("corral: the stream ended without a finished event")
	}
	return r, nil
}
