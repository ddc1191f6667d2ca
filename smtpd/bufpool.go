package smtpd

import "bytes"

// bufferPool recycles the buffers message bodies are read into. accept
// copies each body out, behind our Received field, into a slice of exactly
// the right size, so a buffer is free again once Data returns; without the
// pool every body would grow a fresh buffer by doubling, allocating about
// twice its size. A sync.Pool is emptied by every other garbage
// collection, which under a stream of large bodies comes every few
// messages; this pool keeps up to cap(free) buffers whatever the collector
// does.
type bufferPool struct {
	free   chan *bytes.Buffer
	maxCap int // buffers grown past this by a big message are not kept
}

// bodyBufs serves every session. 32 buffers of at most 256 KiB keep at
// most 8 MiB idle.
var bodyBufs = &bufferPool{free: make(chan *bytes.Buffer, 32), maxCap: 256 << 10}

func (p *bufferPool) get() *bytes.Buffer {
	select {
	case b := <-p.free:
		return b
	default:
		return new(bytes.Buffer)
	}
}

func (p *bufferPool) put(b *bytes.Buffer) {
	if b.Cap() > p.maxCap {
		return
	}
	b.Reset()
	select {
	case p.free <- b:
	default: // enough kept already
	}
}
