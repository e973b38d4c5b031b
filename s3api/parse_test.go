package s3api

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestAddress(t *testing.T) {
	for _, tc := range []struct {
		domain, host, path string
		bucket, key        string
	}{
		{"", "127.0.0.1:9100", "/photos/2024/cat.jpg", "photos", "2024/cat.jpg"},
		{"", "127.0.0.1:9100", "/photos", "photos", ""},
		{"", "127.0.0.1:9100", "/photos/", "photos", ""},
		{"", "127.0.0.1:9100", "/", "", ""},
		{"", "127.0.0.1:9100", "/photos/a//b/../c", "photos", "a//b/../c"}, // as sent, never cleaned
		{"s3.example.com", "photos.s3.example.com", "/2024/cat.jpg", "photos", "2024/cat.jpg"},
		{"s3.example.com", "Photos.S3.Example.com:443", "/k", "photos", "k"},
		{"s3.example.com", "s3.example.com", "/photos/k", "photos", "k"}, // path-style on the bare domain
		{"s3.example.com", "other.example.com", "/photos/k", "photos", "k"},
	} {
		s := &server{cfg: Config{Domain: tc.domain}}
		r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
		r.URL.Path = tc.path
		if b, k := s.address(r); b != tc.bucket || k != tc.key {
			t.Errorf("domain %q, host %q, path %q: bucket %q key %q, want %q %q", tc.domain, tc.host, tc.path, b, k, tc.bucket, tc.key)
		}
	}
}

func TestCopySource(t *testing.T) {
	for _, tc := range []struct {
		in          string
		bucket, key string
		err         error
	}{
		{"photos/2024/cat.jpg", "photos", "2024/cat.jpg", nil},
		{"/photos/2024/cat.jpg", "photos", "2024/cat.jpg", nil},
		{"photos/a%20file%2B1.bin", "photos", "a file+1.bin", nil},
		{"photos/what%3FversionId=1", "photos", "what?versionId=1", nil}, // an encoded '?' is the key's
		{"photos/k?versionId=abc", "", "", errNotImplemented},
		{"photos", "", "", errInvalidArgument},
		{"photos/", "", "", errInvalidArgument},
		{"/k", "", "", errInvalidArgument},
		{"photos/%zz", "", "", errInvalidArgument},
	} {
		b, k, err := copySource(tc.in)
		if b != tc.bucket || k != tc.key || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("copySource(%q) = %q, %q, %v; want %q, %q, %v", tc.in, b, k, err, tc.bucket, tc.key, tc.err)
		}
	}
}

func TestCopyRange(t *testing.T) {
	for _, tc := range []struct {
		in             string
		offset, length int64
		ok             bool
	}{
		{"", 0, -1, true},
		{"bytes=0-0", 0, 1, true},
		{"bytes=5-1048580", 5, 1048576, true},
		{"bytes=5-4", 0, 0, false},
		{"bytes=-5", 0, 0, false},
		{"bytes=5-", 0, 0, false},
		{"5-10", 0, 0, false},
		{"bytes=0-9223372036854775807", 0, 0, false}, // its length overflows
	} {
		off, n, err := copyRange(tc.in)
		if tc.ok && (err != nil || off != tc.offset || n != tc.length) || !tc.ok && !errors.Is(err, errInvalidArgument) {
			t.Errorf("copyRange(%q) = %d, %d, %v", tc.in, off, n, err)
		}
	}
}

func TestMultipartETag(t *testing.T) {
	for etag, want := range map[string]bool{
		`"d41d8cd98f00b204e9800998ecf8427e"`:   false,
		`"abc3273c0fd4e2f735fefdde0508ffc0-3"`: true,
		`abc3273c0fd4e2f735fefdde0508ffc0-100`: true,
		`"abc3273c0fd4e2f735fefdde0508ffc0-"`:  false,
		``:                                     false,
	} {
		if got := multipartETag(etag); got != want {
			t.Errorf("multipartETag(%s) = %v, want %v", etag, got, want)
		}
	}
}
