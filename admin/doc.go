// Package admin is sluice's control surface: an HTTP/JSON API on a unix
// socket that the sluice CLI talks to while the daemon runs, and the
// client side of it. It owns no state: every request is answered through
// the Backend interface, which the daemon implements over the queue and
// the scheduler.
//
// The socket is created with mode 0660: whoever may read it may steer the
// relay, so its directory and group decide who that is.
package admin
