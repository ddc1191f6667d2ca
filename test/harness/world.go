package harness

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/sluice-mta/sluice/internal/testdns"
	"github.com/sluice-mta/sluice/internal/testmx"
)

// World is a small Internet on loopback: a DNS server and one fake MX per
// domain at 127.0.0.2, 127.0.0.3, ..., all on one port, the port sluice
// delivers to.
type World struct {
	DNS  *testdns.Server
	Port int
	MX   map[string]*testmx.Server // by domain
}

// NewWorld starts the DNS server and the MXes, with an MX record
// (mx.DOMAIN) and an A record for each domain.
func NewWorld(t testing.TB, domains ...string) *World {
	t.Helper()
	w := &World{DNS: testdns.Start(t), MX: map[string]*testmx.Server{}}
	ips := make([]string, len(domains))
	for i := range domains {
		ips[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	port, servers := testmx.StartCluster(t, ips...)
	w.Port = port
	for i, d := range domains {
		w.DNS.AddMX(d, 10, "mx."+d)
		w.DNS.AddA("mx."+d, ips[i])
		w.MX[d] = servers[i]
	}
	return w
}

// Config returns a daemon configuration for this world, its file and log
// in dir.
func (w *World) Config(dir string) Config {
	return Config{Dir: dir, DNSServer: w.DNS.Addr(), DeliveryPort: w.Port}
}

// FreePort returns a TCP port on ip that was free a moment ago, for a
// daemon that must keep its address across restarts.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PortFree reports whether ip:port can be bound now.
func PortFree(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
