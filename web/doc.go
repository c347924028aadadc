// Package web serves the rise workbench in a browser: an HTTP API over dumps,
// SAEs and steering, a websocket hub for progress events, and the embedded
// user interface.
package web
