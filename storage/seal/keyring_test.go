package seal_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

func b64(id uint32) string { return base64.StdEncoding.EncodeToString(testKey(id)) }

func TestParseKeyFile(t *testing.T) {
	file := "\ufeff# objstore seal keys\r\n" +
		"\n" +
		"  7 : " + b64(7) + "   # newest, primary\r\n" +
		"3:" + b64(3) + "\n" +
		"\t# retired soon\n" +
		"4294967295:" + b64(1) + "\n" +
		"0:" + b64(0)
	kr, err := seal.ParseKeyFile([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if kr.Primary() != 7 {
		t.Errorf("Primary = %d, want 7", kr.Primary())
	}
	if got := kr.IDs(); !slices.Equal(got, []uint32{0, 3, 7, 4294967295}) {
		t.Errorf("IDs = %v", got)
	}
	if !kr.Has(3) || kr.Has(5) {
		t.Error("Has is wrong")
	}
	// The parsed keys are the ones written: a body sealed with the
	// test keyring opens with the parsed one.
	data := sealBytes(t, testKeyring(t, 3), binding, []byte("hello"), testSeg)
	if _, err := openBytes(data, kr, binding); err != nil {
		t.Fatal(err)
	}

	one, err := seal.ParseKeyFile([]byte("12:" + b64(12)))
	if err != nil || one.Primary() != 12 {
		t.Fatalf("single key without a newline: %v", err)
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	key := b64(1)
	short := base64.StdEncoding.EncodeToString(testKey(2)[:31])
	long := base64.StdEncoding.EncodeToString(append(testKey(3), 0))
	zeros := base64.StdEncoding.EncodeToString(make([]byte, 32))
	unpadded := strings.TrimRight(key, "=")
	for _, c := range []struct{ name, file, want string }{
		{"empty", "", "no key"},
		{"comments only", "# nothing\n\n   \n", "no key"},
		{"no colon", key, "line 1: want <id>:<base64 key>"},
		{"key before id", "\n" + key + ":1", "line 2: the key ID is not a decimal"},
		{"empty id", ":" + key, "line 1: the key ID"},
		{"negative id", "-1:" + key, "line 1: the key ID"},
		{"id too large", "4294967296:" + key, "line 1: the key ID"},
		{"hex id", "0x1:" + key, "line 1: the key ID"},
		{"bad base64", "1:" + key[:20] + "!" + key[21:], "line 1: key 1 is not valid standard base64"},
		{"unpadded", "1:" + unpadded, "not valid standard base64"},
		{"url base64", "1:" + strings.NewReplacer("+", "-", "/", "_").Replace(b64(5)), "not valid standard base64"},
		{"space inside", "1:" + key[:10] + " " + key[10:], "not valid standard base64"},
		{"empty key", "1:", "key 1: key is 0 bytes, want 32"},
		{"31 bytes", "1:" + short, "key 1: key is 31 bytes, want 32"},
		{"33 bytes", "1:" + long, "key 1: key is 33 bytes, want 32"},
		{"all zeros", "1:" + zeros, "key 1: key is all zeros"},
		{"duplicate id", "1:" + key + "\n2:" + b64(2) + "\n1:" + b64(3), "line 3: key ID 1 is already defined on line 1"},
		{"duplicate key", "1:" + key + "\n# x\n2:" + key, "line 3: key 2 has the same bytes as key 1 (line 1)"},
		{"two keys on a line", "1:" + key + " 2:" + b64(2), "line 1: key 1 is not valid standard base64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := seal.ParseKeyFile([]byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			assertNoSecret(t, err.Error(), c.file)
		})
	}
}

// assertNoSecret fails if msg contains any long token of file: key text
// (or any text of the file, since a key may be misplaced) must never be
// echoed in errors.
func assertNoSecret(t testing.TB, msg, file string) {
	t.Helper()
	for _, tok := range strings.FieldsFunc(file, func(r rune) bool { return r == ':' || r == '#' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		if len(tok) >= 12 && strings.Contains(msg, tok) {
			t.Fatalf("error %q contains file text %q", msg, tok)
		}
		for i := 0; i+12 <= len(tok); i++ {
			if strings.Contains(msg, tok[i:i+12]) {
				t.Fatalf("error %q contains file text %q", msg, tok[i:i+12])
			}
		}
	}
}

func TestNewKeyring(t *testing.T) {
	if _, err := seal.NewKeyring(1, map[uint32][]byte{1: make([]byte, 16)}); err == nil || !strings.Contains(err.Error(), "key 1: key is 16 bytes") {
		t.Errorf("short key: %v", err)
	}
	if _, err := seal.NewKeyring(2, map[uint32][]byte{1: testKey(1)}); err == nil || !strings.Contains(err.Error(), "primary key 2") {
		t.Errorf("missing primary: %v", err)
	}
	if _, err := seal.NewKeyring(1, map[uint32][]byte{1: make([]byte, 32)}); err == nil {
		t.Error("all-zero key accepted")
	}
	// The keyring copies the keys: changing the caller's slice later
	// changes nothing.
	k := testKey(1)
	kr, err := seal.NewKeyring(1, map[uint32][]byte{1: k})
	if err != nil {
		t.Fatal(err)
	}
	data := sealBytes(t, kr, binding, []byte("x"), testSeg)
	k[0] ^= 1
	if _, err := openBytes(data, kr, binding); err != nil {
		t.Fatal(err)
	}
}

func TestKeyringPrintsNoKeys(t *testing.T) {
	kr := testKeyring(t, 1, 2)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%X", "%q"} {
		for _, v := range []any{kr, *kr} {
			out := fmt.Sprintf(verb, v)
			for _, id := range []uint32{1, 2} {
				k := testKey(id)
				for _, enc := range []string{string(k), hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)), base64.StdEncoding.EncodeToString(k), fmt.Sprint(k[:4])[1:8]} {
					if strings.Contains(out, enc) {
						t.Errorf("%s of %T prints key %d: %s", verb, v, id, out)
					}
				}
			}
			if !strings.Contains(out, "primary: 1") {
				t.Errorf("%s of %T = %q", verb, v, out)
			}
		}
	}
}
