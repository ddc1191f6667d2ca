package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Schema versions of the records. Bump on any layout change and keep the
// decoder of every version still found in stores in the field.
const (
	msgVersion  = 1
	rcptVersion = 1
)

// ErrCorrupt wraps every record that cannot be decoded.
var ErrCorrupt = errors.New("queue: corrupt record")

// maxField bounds one decoded string so a corrupt length cannot allocate
// gigabytes.
const maxField = 1 << 20

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.varint(0)
		return
	}
	e.varint(t.UnixNano())
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrCorrupt, what)
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > maxField || n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time(what string) time.Time {
	v := d.varint(what)
	if d.err != nil || v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

const (
	msgFlagHeld     = 1 << 0
	msgFlagBodyFile = 1 << 1
)

// encodeMessage encodes the message fields that are not per recipient.
func encodeMessage(m *Message) []byte {
	e := encoder{b: make([]byte, 0, 64+len(m.From)+len(m.ClientHelo)+len(m.EnvID))}
	e.byte(msgVersion)
	e.str(m.From)
	e.time(m.Arrival)
	e.uvarint(uint64(m.PriorityMilli))
	e.str(m.ClientIP)
	e.str(m.ClientHelo)
	e.str(m.Ret)
	e.str(m.EnvID)
	e.uvarint(uint64(m.Size))
	var flags byte
	if m.Held {
		flags |= msgFlagHeld
	}
	if m.bodyInFile {
		flags |= msgFlagBodyFile
	}
	e.byte(flags)
	e.uvarint(uint64(len(m.Recipients)))
	return e.b
}

// decodeMessage fills m from a record; m.Recipients gets the right length
// but the recipients themselves come from their own records.
func decodeMessage(seq uint64, b []byte, m *Message) (nrcpt int, err error) {
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != msgVersion {
		return 0, fmt.Errorf("%w: message %s has schema version %d, this sluice reads %d", ErrCorrupt, FormatID(seq), v, msgVersion)
	}
	m.Seq = seq
	m.ID = FormatID(seq)
	m.From = d.str("sender")
	m.Arrival = d.time("arrival")
	m.PriorityMilli = uint32(d.uvarint("priority"))
	m.ClientIP = d.str("client ip")
	m.ClientHelo = d.str("client helo")
	m.Ret = d.str("ret")
	m.EnvID = d.str("envid")
	m.Size = int64(d.uvarint("size"))
	flags := d.byte("flags")
	m.Held = flags&msgFlagHeld != 0
	m.bodyInFile = flags&msgFlagBodyFile != 0
	n := d.uvarint("recipient count")
	if d.err != nil {
		return 0, fmt.Errorf("message %s: %w", FormatID(seq), d.err)
	}
	if n > 1<<20 {
		return 0, fmt.Errorf("%w: message %s claims %d recipients", ErrCorrupt, FormatID(seq), n)
	}
	return int(n), nil
}

const (
	rcptFlagDelayNotified = 1 << 0
	rcptFlagMaybeDup      = 1 << 1
)

func encodeRecipient(r *Recipient) []byte {
	e := encoder{b: make([]byte, 0, 48+len(r.Addr)+len(r.ORCPT)+len(r.LastReply.Text))}
	e.byte(rcptVersion)
	e.str(r.Addr)
	e.str(r.ORCPT)
	e.byte(byte(r.Notify))
	e.byte(byte(r.State))
	var flags byte
	if r.DelayNotified {
		flags |= rcptFlagDelayNotified
	}
	if r.MaybeDuplicate {
		flags |= rcptFlagMaybeDup
	}
	e.byte(flags)
	e.uvarint(uint64(r.Attempts))
	e.time(r.NextAttempt)
	e.time(r.LastAttempt)
	e.uvarint(uint64(r.LastReply.Code))
	e.str(r.LastReply.Enhanced)
	e.str(r.LastReply.Text)
	e.str(r.LastReply.RemoteHost)
	e.str(r.LastReply.RemoteIP)
	e.str(r.Reserved.Operator)
	e.time(r.Reserved.WindowStart)
	e.varint(r.Reserved.CostMilli)
	return e.b
}

func decodeRecipient(b []byte, r *Recipient) error {
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != rcptVersion {
		return fmt.Errorf("%w: recipient has schema version %d, this sluice reads %d", ErrCorrupt, v, rcptVersion)
	}
	r.Addr = d.str("address")
	r.ORCPT = d.str("orcpt")
	r.Notify = Notify(d.byte("notify"))
	r.State = State(d.byte("state"))
	flags := d.byte("flags")
	r.DelayNotified = flags&rcptFlagDelayNotified != 0
	r.MaybeDuplicate = flags&rcptFlagMaybeDup != 0
	r.Attempts = int(d.uvarint("attempts"))
	r.NextAttempt = d.time("next attempt")
	r.LastAttempt = d.time("last attempt")
	r.LastReply.Code = int(d.uvarint("reply code"))
	r.LastReply.Enhanced = d.str("enhanced code")
	r.LastReply.Text = d.str("reply text")
	r.LastReply.RemoteHost = d.str("remote host")
	r.LastReply.RemoteIP = d.str("remote ip")
	r.Reserved.Operator = d.str("reserved operator")
	r.Reserved.WindowStart = d.time("reserved window")
	r.Reserved.CostMilli = d.varint("reserved cost")
	if d.err != nil {
		return d.err
	}
	if r.State < StateQueued || r.State > StateFailed {
		return fmt.Errorf("%w: recipient state %d", ErrCorrupt, r.State)
	}
	return nil
}

// Keys. Messages, bodies: 8-byte big-endian sequence. Recipients: sequence
// then 4-byte big-endian index, so a message's recipients are adjacent and in
// order. Usage: operator name, a zero byte, 8-byte big-endian window start in
// Unix seconds.
func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func rcptKey(seq uint64, idx int) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, seq)
	binary.BigEndian.PutUint32(k[8:], uint32(idx))
	return k
}

func usageKey(op string, window time.Time) []byte {
	k := make([]byte, 0, len(op)+9)
	k = append(k, op...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(window.Unix()))
}

// FormatID turns a sequence number into the queue ID users see: upper-case
// hexadecimal, like Postfix's short queue IDs.
func FormatID(seq uint64) string {
	const digits = "0123456789ABCDEF"
	var buf [16]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[seq&0xF]
		seq >>= 4
		if seq == 0 {
			break
		}
	}
	return string(buf[i:])
}

// ParseID is the inverse of FormatID.
func ParseID(id string) (uint64, error) {
	if id == "" || len(id) > 16 {
		return 0, fmt.Errorf("queue: %q is not a queue ID", id)
	}
	var v uint64
	for i := 0; i < len(id); i++ {
		c := id[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, fmt.Errorf("queue: %q is not a queue ID", id)
		}
		v = v<<4 | uint64(d)
	}
	return v, nil
}
