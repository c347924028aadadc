package web

import (
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Websocket timings: a watcher that answers no ping for pongWait is gone.
const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = pongWait * 9 / 10
)

// upgrader keeps gorilla's default origin check: a page from another site
// cannot open a stream of this server.
var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10}

// jobEvents streams a job's events over a websocket: the history from
// ?from=SEQ on, then each new event, then a close after the final state.
// This goroutine is the connection's only writer; a reader goroutine
// answers control frames and notices the client leaving.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	j, err := s.job(r)
	if err != nil {
		fail(w, err)
		return
	}
	from, err := intParam(r, "from", 0, 0)
	if err != nil {
		fail(w, err)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	defer conn.Close()

	gone := make(chan struct{})
	conn.SetReadLimit(4096)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()

	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	next := from
	for {
		evs, ended, more := j.Events(next)
		for _, e := range evs {
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteJSON(e); err != nil {
				return
			}
			next = e.Seq + 1
		}
		if ended {
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "job "+j.State()))
			// Wait briefly for the client's close, so it sees a clean end.
			select {
			case <-gone:
			case <-time.After(time.Second):
			}
			return
		}
		select {
		case <-more:
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		case <-gone:
			return
		case <-s.ctx.Done():
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"))
			return
		}
	}
}
