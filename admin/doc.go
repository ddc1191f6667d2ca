// Package admin is sluice's control surface: an HTTP/JSON API on a unix
// socket that the sluice CLI talks to while the daemon runs, and the
// client side of it. It owns no state: every request is answered through
// the Backend interface, which the daemon implements over the queue and
// the scheduler.
//
// The endpoints (every CLI verb is a thin client of one of them):
//
//	GET  /healthz                        200 "ok" when the store and the SMTP listeners are up, else 503
//	GET  /v1/queue?operator=&state=&older_than=   queued messages ([]Message, postqueue -j names)
//	GET  /v1/queue/{id}                  one message in detail (MessageDetail)
//	GET  /v1/queue/{id}/raw              the stored message (message/rfc822)
//	POST /v1/queue/delete|hold|release|retry|bounce   {"ids":[...]} or {"all":true} -> ActionResult
//	GET  /v1/quota                       every operator's budget ([]OperatorStatus)
//	POST /v1/operators/{name}/suspend    {"for":"1h","reason":"..."} -> SuspendResult
//	POST /v1/operators/{name}/resume
//	POST /v1/reload                      re-read the configuration; 422 with the problems if refused
//
// Errors are JSON objects {"error","kind","detail"} with status 400 (bad
// request), 404 (unknown queue ID or operator), 422 (reload refused) or
// 500; the client turns them back into NotFoundError,
// UnknownOperatorError, ReloadError and BadRequestError.
//
// The socket is created with mode 0660: whoever may connect to it may
// steer the relay, so its directory and group decide who that is.
package admin
