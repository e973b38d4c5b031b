package s3api

import "fmt"

// The multipart upload calls are passed through to the origin bucket.

func (s *server) notYet(req *request, what string) {
	s.fail(req, fmt.Errorf("%w: %s", errNotImplemented, what))
}

func (s *server) listUploads(req *request)    { s.notYet(req, "ListMultipartUploads") }
func (s *server) listParts(req *request)      { s.notYet(req, "ListParts") }
func (s *server) uploadPart(req *request)     { s.notYet(req, "UploadPart") }
func (s *server) uploadPartCopy(req *request) { s.notYet(req, "UploadPartCopy") }
func (s *server) abortUpload(req *request)    { s.notYet(req, "AbortMultipartUpload") }
func (s *server) createUpload(req *request)   { s.notYet(req, "CreateMultipartUpload") }
func (s *server) completeUpload(req *request) { s.notYet(req, "CompleteMultipartUpload") }
