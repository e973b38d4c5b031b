package seal_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/objstore/objstore/storage/seal"
)

func Example() {
	kr, err := seal.ParseKeyFile([]byte(`
# The first key seals; the others only open older bodies.
2:` + b64(2) + `
1:` + b64(1) + `
`))
	if err != nil {
		log.Fatal(err)
	}
	id := []byte("01J0EXAMPLEOBJECTULID") // the object's identity

	// Seal a body into a file.
	path := filepath.Join(os.TempDir(), "seal-example")
	defer os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w, err := seal.NewWriter(f, kr, id)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, strings.NewReader("hello, sealed world")); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	if err := f.Sync(); err != nil { // the Writer never syncs
		log.Fatal(err)
	}
	f.Close()

	// Open it and read a range; r could go to http.ServeContent.
	f, err = os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	r, err := seal.Open(f, st.Size(), kr, id)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	p := make([]byte, 6)
	if _, err := r.ReadAt(p, 7); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d plaintext bytes in a %d-byte file, key %d: %q\n", r.Size(), st.Size(), r.KeyID(), p)
	// Output: 19 plaintext bytes in a 83-byte file, key 2: "sealed"
}
