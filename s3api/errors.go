package s3api

import (
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/objstore/objstore/api"
	"github.com/objstore/objstore/auth"
	"github.com/objstore/objstore/node"
)

// Errors of the S3 endpoint itself; node's and auth's errors are mapped by
// s3Error.
var (
	errAccessDenied      = errors.New("access denied")
	errNotImplemented    = errors.New("not implemented")
	errMethod            = errors.New("method not allowed on this resource")
	errInternal          = errors.New("internal error")
	errInvalidArgument   = errors.New("invalid argument")
	errInvalidRequest    = errors.New("invalid request")
	errMalformedXML      = errors.New("malformed XML")
	errBadDigest         = errors.New("the body does not match its checksum")
	errInvalidDigest     = errors.New("the checksum header is not valid")
	errNoSuchBucket      = errors.New("no such bucket")
	errBucketOwned       = errors.New("bucket already owned by you")
	errInvalidRange      = errors.New("the requested range is not satisfiable")
	errInvalidPartNumber = errors.New("the requested part number is not satisfiable")
	errPrecondition      = errors.New("a precondition does not hold")
	errIncompleteBody    = errors.New("the body is shorter than its declared length")
	errMissingLength     = errors.New("a Content-Length is required")
)

// s3ErrorCode maps an error to its S3 code and HTTP status. key says
// whether the request named an object (NoSuchKey) or only a bucket
// (NoSuchBucket) when the error is a miss.
func s3ErrorCode(err error, key bool) (string, int) {
	if code, status := auth.S3ErrorCode(err); code != "InternalError" {
		return code, status // authentication, and the body's signatures and checksums
	}
	switch {
	case errors.Is(err, node.ErrNoSuchUpload):
		return "NoSuchUpload", http.StatusNotFound
	case errors.Is(err, node.ErrInvalidPartOrder):
		return "InvalidPartOrder", http.StatusBadRequest
	case errors.Is(err, node.ErrInvalidPart):
		return "InvalidPart", http.StatusBadRequest
	case errors.Is(err, node.ErrEntityTooSmall):
		return "EntityTooSmall", http.StatusBadRequest
	case errors.Is(err, node.ErrBadDigest):
		return "BadDigest", http.StatusBadRequest
	case errors.Is(err, node.ErrInvalidPartNumber):
		return "InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, errInvalidRequest):
		return "InvalidRequest", http.StatusBadRequest
	case errors.Is(err, errAccessDenied), errors.Is(err, node.ErrForbidden):
		return "AccessDenied", http.StatusForbidden
	case errors.Is(err, errNotImplemented):
		return "NotImplemented", http.StatusNotImplemented
	case errors.Is(err, errMethod):
		return "MethodNotAllowed", http.StatusMethodNotAllowed
	case errors.Is(err, errMalformedXML):
		return "MalformedXML", http.StatusBadRequest
	case errors.Is(err, errBadDigest):
		return "BadDigest", http.StatusBadRequest
	case errors.Is(err, errInvalidDigest):
		return "InvalidDigest", http.StatusBadRequest
	case errors.Is(err, errNoSuchBucket):
		return "NoSuchBucket", http.StatusNotFound
	case errors.Is(err, errBucketOwned):
		return "BucketAlreadyOwnedByYou", http.StatusConflict
	case errors.Is(err, errInvalidRange):
		return "InvalidRange", http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, errInvalidPartNumber):
		return "InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, errPrecondition):
		return "PreconditionFailed", http.StatusPreconditionFailed
	case errors.Is(err, errIncompleteBody):
		return "IncompleteBody", http.StatusBadRequest
	case errors.Is(err, errMissingLength):
		return "MissingContentLength", http.StatusLengthRequired
	case errors.Is(err, errInvalidArgument):
		return "InvalidArgument", http.StatusBadRequest
	case errors.Is(err, api.ErrSlowBody):
		return "RequestTimeout", http.StatusBadRequest
	case errors.Is(err, node.ErrTooLarge):
		return "EntityTooLarge", http.StatusBadRequest
	case errors.Is(err, node.ErrNotFound), errors.Is(err, node.ErrDeleted):
		if key {
			return "NoSuchKey", http.StatusNotFound
		}
		return "NoSuchBucket", http.StatusNotFound
	case errors.Is(err, node.ErrInvalid):
		if key {
			return "InvalidArgument", http.StatusBadRequest
		}
		return "InvalidBucketName", http.StatusBadRequest
	case errors.Is(err, node.ErrConflict):
		return "OperationAborted", http.StatusConflict
	case errors.Is(err, node.ErrBusy):
		return "SlowDown", http.StatusServiceUnavailable
	case errors.Is(err, node.ErrRemoteUnavailable), errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrUnavailable),
		errors.Is(err, node.ErrNoSpace):
		return "ServiceUnavailable", http.StatusServiceUnavailable
	}
	return "InternalError", http.StatusInternalServerError
}

// errorBody is S3's error document.
type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	Resource   string `xml:",omitempty"`
	Key        string `xml:",omitempty"`
	BucketName string `xml:",omitempty"`
	RequestID  string `xml:"RequestId"`
	HostID     string `xml:"HostId"`
}

// fail answers err as S3 does: its code and status, and an XML error
// document except for HEAD. Server faults are logged in full and
// answered with a generic message.
func (s *server) fail(req *request, err error) {
	code, status := s3ErrorCode(err, req.key != "")
	msg := err.Error()
	switch {
	case req.r.Context().Err() != nil && status >= 500:
		s.log.Debug("request canceled", "method", req.r.Method, "path", req.r.URL.Path, "err", err)
		code, status, msg = "RequestTimeout", http.StatusBadRequest, "request canceled"
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", "method", req.r.Method, "path", req.r.URL.Path, "request_id", req.id, "err", err)
		msg = "We encountered an internal error. Please try again."
	case status >= 500:
		s.log.Warn("request failed", "method", req.r.Method, "path", req.r.URL.Path, "status", status, "err", err)
		msg = node.PublicMessage(err)
	}
	h := req.w.Header()
	for _, k := range []string{"Content-Length", "ETag", "Last-Modified", "Content-Range", "Content-Disposition", "Content-Encoding"} {
		h.Del(k)
	}
	if req.r.Method == http.MethodHead {
		req.w.WriteHeader(status)
		return
	}
	writeXML(req.w, status, errorBody{Code: code, Message: msg, Resource: req.r.URL.Path, Key: req.key,
		BucketName: req.bucket, RequestID: req.id, HostID: req.id})
}

// writeXML answers status with v as an XML document.
func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

// xmlns is the namespace of S3's documents.
const xmlns = "http://s3.amazonaws.com/doc/2006-03-01/"
