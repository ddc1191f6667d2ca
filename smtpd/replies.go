package smtpd

import "github.com/emersion/go-smtp"

// Fixed replies. Every error handed to go-smtp is an *smtp.SMTPError: any
// other error's text would reach the client verbatim (STYLE.md 2.1).
var (
	errInternal = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Internal error, closing connection"}
	errNoMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "Need MAIL command"}
	errNoRcpt = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "Need RCPT command"}
	// RFC 5321 2.3.8: CR and LF only as CRLF; RFC 3463 X.6.0 is the
	// catch-all media error (no code more specific is registered).
	replyBareCR = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Bare <CR> received in message, see RFC 5321 2.3.8"}
	replyBareLF = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Bare <LF> received in message, see RFC 5321 2.3.8"}
	// RFC 5321 4.5.3.1.9 lists "500 Line too long" for this limit.
	replyLineTooLong = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Line too long, see RFC 5321 4.5.3.1.6"}
	// RFC 1870 6.1 and RFC 3463 X.3.4.
	replyTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message size exceeds fixed maximum message size"}
	// RFC 5321 6.3 and RFC 3463 X.4.6 (routing loop detected).
	replyLoop = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6},
		Message: "Too many Received headers: mail loop"}
	replyNoSpace = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
		Message: "Insufficient system storage"}
	replyTempLocal = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local problem, try again later"}
	replyTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
		Message: "Timeout during message transfer, closing connection"}
	replyConnLost = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 0},
		Message: "Error during message transfer, closing connection"}
	replyAborted = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 5, 0},
		Message: "Message transfer aborted"}
	replyShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "Service shutting down, try again later"}
)
