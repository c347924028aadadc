package web

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The workbench runs on the researcher's machine, so a page of any site the
// researcher visits can send it requests. Two checks keep such pages out:
//
//   - DNS rebinding: a site's name that resolves to 127.0.0.1 makes the
//     browser treat the workbench as that site, with its pages free to read
//     the answers. A connection that arrived at a loopback address must name
//     a loopback host in its Host header (checkHost).
//   - Cross-site requests: a form or a no-cors fetch from another origin can
//     send a POST without asking first, but only with a "simple" content type
//     (text/plain, form encodings). Every request that changes something
//     must be JSON and, where the browser says where it comes from, come from
//     the workbench's own origin (checkSameOrigin).

// checkHost refuses a request that arrived at a loopback address but names
// another host than localhost, a loopback IP or one of the allowed hosts,
// or another port than the one it arrived at. Requests that arrived
// elsewhere are left to the access token.
func (s *Server) checkHost(r *http.Request) error {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(lhost); ip == nil || !ip.IsLoopback() {
		return nil
	}
	host, port := r.Host, "80"
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	for _, a := range s.cfg.AllowedHosts {
		ah, ap, err := net.SplitHostPort(a)
		if err != nil {
			ah, ap = a, ""
		}
		if strings.EqualFold(strings.Trim(ah, "[]"), host) && (ap == "" || ap == port) {
			return nil
		}
	}
	ip := net.ParseIP(host)
	if (host == "localhost" || ip != nil && ip.IsLoopback()) && port == lport {
		return nil
	}
	return errorf(http.StatusMisdirectedRequest,
		"Host %q: expected localhost:%s, 127.0.0.1:%s or [::1]:%s, the address this server listens on (a name that leads here through a tunnel or proxy needs rise serve --allow-host NAME)",
		r.Host, lport, lport, lport)
}

// safeMethod reports whether a method only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkSameOrigin refuses a request that changes something (any method but
// GET, HEAD and OPTIONS) unless its Content-Type is application/json, its
// Sec-Fetch-Site (when sent) is same-origin or none, and its Origin (when
// sent) has the request's own host. A page of another origin can send JSON
// only after a preflight, which this server never grants.
func checkSameOrigin(r *http.Request) error {
	if safeMethod(r.Method) {
		return nil
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errorf(http.StatusForbidden, "%s %s: cross-site request refused: Sec-Fetch-Site is %q, expected same-origin: only the workbench's own pages may change things",
			r.Method, r.URL.Path, site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return errorf(http.StatusForbidden, "%s %s: cross-origin request refused: Origin is %q, expected http://%s: only the workbench's own pages may change things",
				r.Method, r.URL.Path, o, r.Host)
		}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "%s %s: expected Content-Type: application/json, found %s",
			r.Method, r.URL.Path, quoteOrNone(ct))
	}
	return nil
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return fmt.Sprintf("%q", s)
}
