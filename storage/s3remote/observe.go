package s3remote

import (
	"context"
	"errors"
	"io"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Observer is told of every request a Remote sends to S3, for metrics.
// Its methods are called concurrently and must not block.
type Observer interface {
	// Request reports one S3 operation (GetObject, PutObject,
	// UploadPart, ...), its retries included: its outcome (one of the
	// Outcome constants) and how long it took to its answer's headers.
	Request(operation, outcome string, elapsed time.Duration)
	// BodyRead reports n bytes of answer bodies read from S3.
	BodyRead(n int)
}

// Outcomes of an S3 request, as Observer.Request reports them.
const (
	OutcomeOK           = "ok"
	OutcomeNotFound     = "not_found"           // 404
	OutcomeNotModified  = "not_modified"        // 304 to a conditional GET
	OutcomePrecondition = "precondition_failed" // 412
	OutcomeClientError  = "client_error"        // any other 4xx: refused
	OutcomeServerError  = "server_error"        // 5xx, throttling included
	OutcomeUnreachable  = "unreachable"         // no answer: connection or timeout
	OutcomeCanceled     = "canceled"            // the caller gave up
)

// outcome classifies an operation's error.
func outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	code := httpStatus(err)
	switch {
	case code == 404:
		return OutcomeNotFound
	case code == 304:
		return OutcomeNotModified
	case code == 412:
		return OutcomePrecondition
	case code >= 500:
		return OutcomeServerError
	case code >= 400:
		return OutcomeClientError
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	}
	return OutcomeUnreachable
}

// observe adds obs's middleware to every operation's stack: one that times
// the whole operation, and one next to the transport that counts the bytes
// of each answer's body as the operation's reader takes them.
func observe(obs Observer) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("objstoreObserve",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				obs.Request(awsmiddleware.GetOperationName(ctx), outcome(err), time.Since(start))
				return out, md, err
			}), middleware.Before)
		if err != nil {
			return err
		}
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("objstoreCountBody",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp.Body != nil {
					resp.Body = &countedBody{ReadCloser: resp.Body, obs: obs}
				}
				return out, md, err
			}), middleware.After)
	}
}

// countedBody reports the bytes read through it to an Observer.
type countedBody struct {
	io.ReadCloser
	obs Observer
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.obs.BodyRead(n)
	}
	return n, err
}
