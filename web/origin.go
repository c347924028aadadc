package web

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// The workbench runs on the researcher's machine, so a page of any site the
// researcher visits can send it requests. A form or a no-cors fetch from
// another origin can send a POST without asking first, but only with a
// "simple" content type (text/plain, form encodings). Every request that
// changes something must be JSON and, where the browser says where it comes
// from, come from the workbench's own origin (checkSameOrigin).

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
