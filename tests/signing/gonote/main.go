// An independent verifier of C2SP signed notes for nocert's tests, on golang.org/x/mod/sumdb/note.
//
// Usage: gonote VKEY... < note. Prints "verified <name>" for each verified signature and exits 0, or
// prints the error and exits 1. A vkey of type 0x04 verifies cosignature/v1 lines (tlog-cosignature),
// written here from the specification: sumdb/note itself knows only type 0x01.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

type cosignatureVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v cosignatureVerifier) Name() string    { return v.name }
func (v cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > 1<<63-1 {
		return false
	}
	m := []byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t))
	return ed25519.Verify(v.key, append(m, msg...), sig[8:])
}

func verifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) == 3 {
		key, err := base64.StdEncoding.DecodeString(parts[2])
		if err == nil && len(key) == 33 && key[0] == 0x04 {
			h := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
			hash := binary.BigEndian.Uint32(h[:4])
			if fmt.Sprintf("%08x", hash) != parts[1] {
				return nil, fmt.Errorf("bad key hash in %s", vkey)
			}
			return cosignatureVerifier{parts[0], hash, ed25519.PublicKey(key[1:])}, nil
		}
	}
	return note.NewVerifier(vkey)
}

func main() {
	var list []note.Verifier
	for _, vkey := range os.Args[1:] {
		v, err := verifier(vkey)
		if err != nil {
			fmt.Println("vkey:", err)
			os.Exit(1)
		}
		list = append(list, v)
	}
	msg, _ := io.ReadAll(os.Stdin)
	n, err := note.Open(msg, note.VerifierList(list...))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	if !bytes.HasPrefix(msg, []byte(n.Text)) {
		fmt.Println("text mismatch")
		os.Exit(1)
	}
	for _, s := range n.Sigs {
		fmt.Println("verified", s.Name)
	}
}
