package cluster

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

// dnsServer answers A queries for name with ips, on a loopback UDP port of
// its own, and returns a resolver that asks it (and nothing else).
func dnsServer(t *testing.T, name string, ips ...string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(dns.Fqdn(name), func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			for _, ip := range ips {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A: net.ParseIP(ip)})
			}
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// freePort returns a UDP and TCP port free on every one of ips.
func freePort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		free := true
		for _, ip := range ips {
			for _, network := range []string{"tcp", "udp"} {
				addr := net.JoinHostPort(ip, strconv.Itoa(port))
				var c interface{ Close() error }
				if network == "tcp" {
					c, err = net.Listen(network, addr)
				} else {
					c, err = net.ListenPacket(network, addr)
				}
				if err != nil {
					free = false
					continue
				}
				c.Close()
			}
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// A seed given as a name that resolves to every node (as a Kubernetes
// headless service does) joins them all; the first node, which the name
// resolves to alone, knows it is the first of its cluster.
func TestSeedNameResolvesToEveryNode(t *testing.T) {
	ips := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	port := freePort(t, ips...)
	seed := "seeds.objstore.test:" + strconv.Itoa(port)
	log := testLogger(t)

	first := startNode(t, log, nodeOpts{bind: net.JoinHostPort(ips[0], strconv.Itoa(port)), join: []string{seed},
		resolver: dnsServer(t, "seeds.objstore.test", ips[0])})
	if !first.SeedsAreSelf() {
		t.Error("the first node, which its seed names alone, does not know it is alone")
	}

	all := dnsServer(t, "seeds.objstore.test", ips...)
	var ns []*testNode
	for _, ip := range ips[1:] {
		ns = append(ns, startNode(t, log, nodeOpts{bind: net.JoinHostPort(ip, strconv.Itoa(port)), join: []string{seed}, resolver: all}))
	}
	for _, n := range ns {
		waitFor(t, "three alive members", func() bool { return allAlive(n.Membership, first.Self().ID, ns[0].Self().ID, ns[1].Self().ID) })
		if n.SeedsAreSelf() {
			t.Error("a node whose seed names two others thinks it is alone")
		}
	}
	waitFor(t, "the first node sees the others", func() bool {
		return allAlive(first.Membership, first.Self().ID, ns[0].Self().ID, ns[1].Self().ID)
	})
	if got := ns[0].seedsExceptSelf(); len(got) != 2 || got[0] == ns[0].Self().GossipAddr || got[1] == ns[0].Self().GossipAddr {
		t.Errorf("seeds except self of %s: %v", ns[0].Self().GossipAddr, got)
	}
}
