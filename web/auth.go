package web

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// tokenCookie carries the access token in a browser once it has opened a
// page with ?token=.
const tokenCookie = "rise_token"

// IsLoopback reports whether a listen address binds this machine only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RequireToken wraps h so that every request must carry the token: as
// "Authorization: Bearer TOKEN", as the rise_token cookie, or as ?token=
// (which sets the cookie, so a browser opens the workbench once with the
// token in its address and goes on without it). Without the token the
// answer is 401 with a JSON error.
func RequireToken(token string, h http.Handler) http.Handler {
	ok := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && ok(auth) {
			h.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(tokenCookie); err == nil && ok(c.Value) {
			h.ServeHTTP(w, r)
			return
		}
		if q := r.URL.Query().Get("token"); q != "" && ok(q) {
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			u := *r.URL
			v := u.Query()
			v.Del("token")
			u.RawQuery = v.Encode()
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		writeError(w, http.StatusUnauthorized, errorf(http.StatusUnauthorized,
			"this server needs its access token: send \"Authorization: Bearer TOKEN\", or open a page once with ?token=TOKEN"))
	})
}
