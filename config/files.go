package config

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// maxKeyFileBytes bounds the certificate and key files read during
// validation: a PEM chain is a few kilobytes, and a path such as /dev/zero
// must not hang or exhaust the process at startup.
const maxKeyFileBytes = 1 << 20

// readSmallFile reads a regular file of at most maxKeyFileBytes. Errors
// carry the reason only: callers name the path.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, pathReason(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, pathReason(err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, pathReason(err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFileBytes)
	}
	return data, nil
}

// pathReason strips the operation and path from an *os.PathError, which
// the caller's message already names.
func pathReason(err error) error {
	var perr *os.PathError
	if errors.As(err, &perr) {
		return perr.Err
	}
	return err
}
