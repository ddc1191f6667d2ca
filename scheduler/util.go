package scheduler

import "errors"

func asTemporary(err error, t *interface{ IsTemporary() bool }) bool {
	return errors.As(err, t)
}
