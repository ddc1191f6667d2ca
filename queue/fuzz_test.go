package queue

import "testing"

// FuzzDecode feeds arbitrary bytes to the record decoders: they must never
// panic, and whatever they accept must encode back to a record that decodes
// to the same value.
func FuzzDecode(f *testing.F) {
	m := &Message{From: "a@b", PriorityMilli: 1500, Ret: "FULL", EnvID: "x", Recipients: make([]Recipient, 2)}
	f.Add(encodeMessage(m))
	r := &Recipient{Addr: "c@d", ORCPT: "rfc822;c@d", State: StateDeferred, Attempts: 3,
		LastReply: Reply{Code: 451, Enhanced: "4.7.0", Text: "later"}}
	f.Add(encodeRecipient(r))
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if n, err := decodeMessage(7, b, &m); err == nil {
			if n > 64 {
				return // the count is checked elsewhere; don't allocate a million recipients per run
			}
			m.Recipients = make([]Recipient, n)
			var m2 Message
			if _, err := decodeMessage(7, encodeMessage(&m), &m2); err != nil {
				t.Fatalf("re-decode of an accepted message record failed: %v", err)
			}
			if m2.From != m.From || m2.EnvID != m.EnvID || m2.PriorityMilli != m.PriorityMilli {
				t.Fatalf("message round trip changed: %+v vs %+v", m, m2)
			}
		}
		var r Recipient
		if err := decodeRecipient(b, &r); err == nil {
			var r2 Recipient
			if err := decodeRecipient(encodeRecipient(&r), &r2); err != nil {
				t.Fatalf("re-decode of an accepted recipient record failed: %v", err)
			}
			if r2.Addr != r.Addr || r2.State != r.State || r2.LastReply != r.LastReply {
				t.Fatalf("recipient round trip changed: %+v vs %+v", r, r2)
			}
		}
	})
}
