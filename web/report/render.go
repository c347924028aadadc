package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
)

// A report is a list of sections, each a list of blocks; HTML and Markdown
// are two writings of the same blocks, so they hold the same numbers.
type section struct {
	id, title string
	blocks    []block
}

func (s *section) add(bl ...block) { s.blocks = append(s.blocks, bl...) }

type block interface{ isBlock() }

// para is a paragraph of plain text.
type para struct{ text string }

// heading is a sub-heading within a section.
type heading struct{ text string }

// table is a table of plain-text cells; mono lists the columns set in a
// fixed-width font (paths, digests).
type table struct {
	caption string
	head    []string
	rows    [][]string
	mono    []int
}

// figure is a chart drawn as SVG.
type figure struct {
	n             int
	kind, caption string
	svg           []byte
}

// code is a block of command lines.
type code struct{ lines []string }

func (para) isBlock()    {}
func (heading) isBlock() {}
func (table) isBlock()   {}
func (figure) isBlock()  {}
func (code) isBlock()    {}

const css = `body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.7em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.8em 0;font-size:13px;display:block;overflow-x:auto;max-width:100%}caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:left;word-break:break-all}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:13px;color:#444}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}nav a{margin-right:1em}`

// WriteHTML writes the report as one HTML page: no script, no stylesheet or
// image from elsewhere, every figure an inline SVG.
func (r *Report) WriteHTML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	e := html.EscapeString
	fmt.Fprintf(bw, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	// A policy that forbids every fetch: the page is whole as it is.
	fmt.Fprintf(bw, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n")
	fmt.Fprintf(bw, "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n<h1>%s</h1>\n<nav>", e(r.Title), css, e(r.Title))
	for _, s := range r.sections {
		fmt.Fprintf(bw, "<a href=\"#%s\">%s</a>", s.id, e(s.title))
	}
	fmt.Fprint(bw, "</nav>\n")
	for _, s := range r.sections {
		fmt.Fprintf(bw, "<section id=\"%s\">\n<h2>%s</h2>\n", s.id, e(s.title))
		for _, bl := range s.blocks {
			switch v := bl.(type) {
			case para:
				fmt.Fprintf(bw, "<p>%s</p>\n", e(v.text))
			case heading:
				fmt.Fprintf(bw, "<h3>%s</h3>\n", e(v.text))
			case table:
				fmt.Fprint(bw, "<table>")
				if v.caption != "" {
					fmt.Fprintf(bw, "<caption>%s</caption>", e(v.caption))
				}
				fmt.Fprint(bw, "\n<tr>")
				for _, h := range v.head {
					fmt.Fprintf(bw, "<th>%s</th>", e(h))
				}
				fmt.Fprint(bw, "</tr>\n")
				for _, row := range v.rows {
					fmt.Fprint(bw, "<tr>")
					for i, c := range row {
						if slices.Contains(v.mono, i) {
							fmt.Fprintf(bw, "<td class=\"mono\">%s</td>", e(c))
						} else {
							fmt.Fprintf(bw, "<td>%s</td>", e(c))
						}
					}
					fmt.Fprint(bw, "</tr>\n")
				}
				fmt.Fprint(bw, "</table>\n")
			case figure:
				fmt.Fprintf(bw, "<figure id=\"figure-%d\" class=\"figure\" data-kind=\"%s\">\n", v.n, e(v.kind))
				bw.Write(v.svg)
				fmt.Fprintf(bw, "\n<figcaption>Figure %d. %s</figcaption>\n</figure>\n", v.n, e(v.caption))
			case code:
				fmt.Fprintf(bw, "<pre>%s</pre>\n", e(strings.Join(v.lines, "\n")))
			}
		}
		fmt.Fprint(bw, "</section>\n")
	}
	fmt.Fprint(bw, "</body>\n</html>\n")
	return bw.Flush()
}

// WriteMarkdown writes the report as Markdown: the same sections, tables
// and commands; each figure is named with its caption and drawn in the
// HTML page.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# %s\n", r.Title)
	for _, s := range r.sections {
		fmt.Fprintf(bw, "\n## %s\n", s.title)
		for _, bl := range s.blocks {
			switch v := bl.(type) {
			case para:
				fmt.Fprintf(bw, "\n%s\n", v.text)
			case heading:
				fmt.Fprintf(bw, "\n### %s\n", v.text)
			case table:
				bw.WriteString("\n")
				if v.caption != "" {
					fmt.Fprintf(bw, "**%s**\n\n", mdCell(v.caption))
				}
				writeRow := func(cells []string, mono []int) {
					bw.WriteString("|")
					for i, c := range cells {
						c = mdCell(c)
						if slices.Contains(mono, i) && c != "" {
							c = "`" + c + "`"
						}
						fmt.Fprintf(bw, " %s |", c)
					}
					bw.WriteString("\n")
				}
				writeRow(v.head, nil)
				bw.WriteString("|")
				for i := range v.head {
					if i == 0 {
						bw.WriteString(" --- |")
					} else {
						bw.WriteString(" ---: |")
					}
				}
				bw.WriteString("\n")
				for _, row := range v.rows {
					writeRow(row, v.mono)
				}
			case figure:
				fmt.Fprintf(bw, "\n*Figure %d. %s* (drawn in the HTML report)\n", v.n, v.caption)
			case code:
				fmt.Fprintf(bw, "\n```sh\n%s\n```\n", strings.Join(v.lines, "\n"))
			}
		}
	}
	return bw.Flush()
}

// mdCell makes text safe in a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\\\")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "`", "'")
	s = strings.ReplaceAll(s, "<", "&lt;")
	return strings.ReplaceAll(s, "\n", " ")
}
