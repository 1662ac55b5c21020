package firewall

import (
	"fmt"
	"strings"
)

// String renders the ruleset as the table nft would list, which is also
// valid input for `nft -f` (a human can apply, diff or debug it with nft).
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {\n", TableFamily, TableName)
	first := true
	sep := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, m := range rs.Maps {
		sep()
		writeMap(&b, m)
	}
	for _, c := range rs.Chains {
		sep()
		writeChain(&b, c)
	}
	b.WriteString("}\n")
	return b.String()
}

func writeMap(b *strings.Builder, m Map) {
	kind := "map"
	if m.Key.IsSet() {
		kind = "set"
	}
	fmt.Fprintf(b, "\t%s %s {\n", kind, m.Name)
	switch m.Key {
	case KeyIfname:
		b.WriteString("\t\ttype ifname : verdict\n")
	case KeyIPv4Prefix:
		b.WriteString("\t\ttype ipv4_addr : verdict\n\t\tflags interval\n")
	case KeyIPv6Prefix:
		b.WriteString("\t\ttype ipv6_addr : verdict\n\t\tflags interval\n")
	case KeyProtoPort:
		b.WriteString("\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n")
	case KeyAddrProtoPort:
		b.WriteString("\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n")
	case KeyProtoPort6:
		b.WriteString("\t\ttype inet_proto . inet_service : ipv6_addr . inet_service\n")
	case KeyAddrProtoPort6:
		b.WriteString("\t\ttype ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service\n")
	case KeyRoutedSet:
		b.WriteString("\t\ttype ipv4_addr . inet_proto . inet_service\n")
	case KeyRoutedSet6:
		b.WriteString("\t\ttype ipv6_addr . inet_proto . inet_service\n")
	}
	for i, e := range m.Elements {
		if i == 0 {
			b.WriteString("\t\telements = { ")
		} else {
			b.WriteString(",\n\t\t\t     ")
		}
		if m.Key.IsSet() {
			b.WriteString(e.KeyString())
		} else {
			fmt.Fprintf(b, "%s : %s", e.KeyString(), e.DataString())
		}
		if i == len(m.Elements)-1 {
			b.WriteString(" }\n")
		}
	}
	b.WriteString("\t}\n")
}

func writeChain(b *strings.Builder, c Chain) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Base != nil {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %s; policy accept;\n", c.Base.Type, c.Base.Hook, c.Base.Priority.Name)
	}
	for _, r := range c.Rules {
		fmt.Fprintf(b, "\t\t%s\n", r)
	}
	b.WriteString("\t}\n")
}
