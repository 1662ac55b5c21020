package firewall

// ClampMSS lowers the maximum segment size a TCP SYN offers to what the
// route it leaves by carries (the route's MTU less the IP and TCP
// headers): "tcp flags syn / syn,rst tcp option maxseg size set rt
// mtu". The kernel only ever lowers the option, never raises it.
//
// Why: a container's interface has the bridge's MTU (1500 by default),
// so it offers an MSS of 1460 to every server; when the host's way out
// carries less (a VPN, a tunnel, a cloud link of 1460 or 1400), the
// server's full-size segments are too big for it, and the "fragmentation
// needed" that should tell the server so is often filtered on the way:
// the connection opens and then hangs on its first large answer (the
// "HTTPS hangs behind the VPN" reports: moby#13475, moby#24220,
// moby#20178). Docker and netavark leave it to the user; berth clamps
// every SYN its containers send out of their bridge, in the network's
// fwd_out chain, which costs the other packets one comparison.
type ClampMSS struct{}

func (ClampMSS) String() string { return "tcp flags syn / syn,rst tcp option maxseg size set rt mtu" }

func (ClampMSS) isStmt() {}

// clampMSSRule is the fwd_out rule that clamps what a network's
// containers open outward.
func clampMSSRule() Rule {
	return Rule{Stmts: []Stmt{ClampMSS{}}, Comment: "MSS CLAMP"}
}
