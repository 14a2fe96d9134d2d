package corral_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corral "github.com/corral-dev/corral/clients/go"
	pb "github.com/corral-dev/corral/clients/go/corralv1"
)

// The client against a real Corral on loopback: CORRAL_TEST_ADDRESS names it (the TypeScript
// suite starts the service and runs these; see test/clients/go.test.ts).
func client(t *testing.T) *corral.Client {
	address := os.Getenv("CORRAL_TEST_ADDRESS")
	if address == "" {
		t.Skip("CORRAL_TEST_ADDRESS names no server")
	}
	c, err := corral.Dial(address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRunGathersOutputAndOutcome(t *testing.T) {
	r, err := client(t).Run(ctx(t), corral.Job("default", nil, "sh", "-c", "echo hi; echo oops >&2; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Stdout) != "hi\n" || string(r.Stderr) != "oops\n" {
		t.Fatalf("stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	o := r.Finished.Outcome
	if o.Status != pb.Status_STATUS_EXITED_NONZERO || o.ExitCode != 3 {
		t.Fatalf("outcome %v", o)
	}
}

func TestEventsComeInOrder(t *testing.T) {
	var kinds []string
	err := client(t).Execute(ctx(t), corral.Job("default", []byte("in\n"), "cat"), func(ev *pb.ExecuteResponse) error {
		switch ev.Event.(type) {
		case *pb.ExecuteResponse_Queued:
			kinds = append(kinds, "queued")
		case *pb.ExecuteResponse_Finished:
			kinds = append(kinds, "finished")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(kinds, " ") != "queued finished" {
		t.Fatalf("events %v", kinds)
	}
}

func TestLimitsAreData(t *testing.T) {
	req := corral.Job("default", nil, "sleep", "5")
	req.Steps[0].Limits = &pb.Limits{WallTimeMs: 300}
	r, err := client(t).Run(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Finished.Outcome.Status != pb.Status_STATUS_WALL_TIME_LIMIT {
		t.Fatalf("outcome %v", r.Finished.Outcome)
	}
}

func TestABadRequestIsInvalidArgumentNamingTheField(t *testing.T) {
	_, err := client(t).Run(ctx(t), corral.Job("default", nil, ""))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "steps[0].argv[0]") {
		t.Fatalf("error %v", err)
	}
}

func TestGeneratedStubsReachTheOtherCalls(t *testing.T) {
	c := client(t)
	profiles, err := c.Stub.ListProfiles(c.Context(ctx(t)), &pb.ListProfilesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range profiles.Profiles {
		found = found || p.Name == "go"
	}
	if !found {
		t.Fatalf("no go profile in %v", profiles.Profiles)
	}
}
