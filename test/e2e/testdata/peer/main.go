// Command peer is the e2e tests' port-publishing probe, copied into busybox
// containers (whose nc has no UDP mode) and run in the test namespaces.
//
//	peer -listen tcp:80,udp:53   answer every connection or datagram with
//	                             the address it came from
//	peer -listen udpport:55      answer every datagram with the address and
//	                             port it came from; "late" not until a
//	                             datagram "fire" comes to port 56, then as
//	                             "late ADDR:PORT"
//	peer -listen echo:81         answer every line of a TCP connection with
//	                             "echo: LINE", for as long as it lasts; a
//	                             line "flood N" with N bytes, byte i being
//	                             i mod 251
//	peer -dial tcp:198.51.100.2:8080   print what the server answered; exit 3
//	                                   when nothing answers within -timeout
//	                                   (refused, unreachable, timed out), 2
//	                                   when the request itself is wrong
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// noAnswer is -dial's exit code when nothing answered.
const noAnswer = 3

func main() {
	listen := flag.String("listen", "", "comma-separated proto:port to serve")
	dial := flag.String("dial", "", "proto:host:port to ask")
	timeout := flag.Duration("timeout", 3*time.Second, "how long -dial waits")
	sport := flag.Int("sport", 0, "source port of -dial (0: any)")
	src := flag.String("src", "", "source address of -dial (empty: the kernel's choice)")
	flag.Parse()
	if *dial != "" {
		if err := ask(*dial, *src, *sport, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			// A test that wants no answer must not pass on a probe that
			// could not ask: only what the network said (nothing within
			// the timeout, a refusal, no route, a reset) is no answer; a
			// malformed request or a source that cannot be bound is not.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
				errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ECONNRESET) {
				os.Exit(noAnswer)
			}
			os.Exit(2)
		}
		return
	}
	for _, l := range strings.Split(*listen, ",") {
		proto, port, _ := strings.Cut(l, ":")
		if err := serve(proto, ":"+port); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	select {}
}

func serve(proto, addr string) error {
	if proto == "udpport" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		port, _ := strconv.Atoi(strings.TrimPrefix(addr, ":"))
		trigger, err := net.ListenPacket("udp4", ":"+strconv.Itoa(port+1))
		if err != nil {
			return err
		}
		go echoUDPPort(c, trigger)
		return nil
	}
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		// IPv6 too, where the container has it (a network with IPv6),
		// on a socket of its own (Go sets IPV6_V6ONLY for "udp6").
		if c6, err := net.ListenPacket("udp6", addr); err == nil {
			go echoUDP(c6)
		}
		go echoUDP(c)
		return nil
	}
	serveTCP := echoTCP
	if proto == "echo" {
		serveTCP = echoLines
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	if l6, err := net.Listen("tcp6", addr); err == nil {
		go serveTCP(l6)
	}
	go serveTCP(l)
	return nil
}

// echoLines answers each line of each connection with "echo: LINE".
func echoLines(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				var n int
				if _, err := fmt.Sscanf(line, "flood %d\n", &n); err == nil {
					buf := make([]byte, n)
					for i := range buf {
						buf[i] = byte(i % 251)
					}
					c.Write(buf)
					continue
				}
				fmt.Fprintf(c, "echo: %s", line)
			}
		}()
	}
}

// echoUDP answers each datagram with its source address.
func echoUDP(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo([]byte(from.(*net.UDPAddr).IP.String()+"\n"), from)
	}
}

// echoUDPPort answers each datagram with its source address and port,
// and a datagram "late" once a datagram comes to trigger.
func echoUDPPort(c, trigger net.PacketConn) {
	lates := make(chan net.Addr, 16)
	go func() {
		b := make([]byte, 100)
		for {
			if _, _, err := trigger.ReadFrom(b); err != nil {
				return
			}
			for more := true; more; {
				select {
				case from := <-lates:
					c.WriteTo([]byte("late "+from.String()+"\n"), from)
				default:
					more = false
				}
			}
		}
	}()
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if string(buf[:n]) == "late" {
			lates <- from
			continue
		}
		c.WriteTo([]byte(from.String()+"\n"), from)
	}
}

// echoTCP answers each connection with its source address.
func echoTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, c.RemoteAddr().(*net.TCPAddr).IP)
		c.Close()
	}
}

func ask(target, src string, sport int, timeout time.Duration) error {
	proto, addr, _ := strings.Cut(target, ":")
	d := net.Dialer{Timeout: timeout}
	if sport != 0 || src != "" {
		ip := net.ParseIP(src)
		if proto == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip, Port: sport}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip, Port: sport}
		}
	}
	network := proto + "4"
	if strings.HasPrefix(addr, "[") { // an IPv6 address: a published port's IPv6 side
		network = proto + "6"
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("who\n")); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(buf[:n])
		return err
	}
	_, err = io.Copy(os.Stdout, c)
	return err
}
