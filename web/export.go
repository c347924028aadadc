package web

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// chart is a chart shown inline, named name with its format's extension.
func chart(f atlas.Format, b []byte, name string) file {
	mime := "image/png"
	if f == atlas.SVG {
		mime = "image/svg+xml"
	}
	return file{mime: mime, name: name + "." + string(f), inline: true, data: b}
}

// download is a file the browser saves as name.
func download(mime, name string, b []byte) file { return file{mime: mime, name: name, data: b} }

func (s *Server) mapChart(f atlas.Format) apiFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		m, _, an, err := s.ready(r)
		if err != nil {
			return nil, err
		}
		a := an.atlas
		var groups []string
		switch c := r.URL.Query().Get("color"); c {
		case "", "behaviour":
			groups = a.Groups()
		case "cluster":
			groups = make([]string, len(a.Features))
			for i, ft := range a.Features {
				groups[i] = fmt.Sprintf("cluster %d", ft.Cluster)
			}
		default:
			return nil, errorf(http.StatusBadRequest, "parameter color: expected behaviour or cluster, found %q", c)
		}
		var b bytes.Buffer
		if err := atlas.RenderMap(&b, f, fmt.Sprintf("%s: decoder columns (%s)", m.Name, a.Layout), a.XY(), groups); err != nil {
			return nil, err
		}
		return chart(f, b.Bytes(), m.Name+"-map"), nil
	}
}

func (s *Server) atlasFile(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, _, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(an.atlas, "", " ")
	if err != nil {
		return nil, err
	}
	return download("application/json", m.Name+"-atlas.json", append(b, '\n')), nil
}

func (s *Server) featureVector(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, _, id, err := s.featureOf(r)
	if err != nil {
		return nil, err
	}
	row := sa.WDec[id*sa.DIn : (id+1)*sa.DIn]
	return download("application/octet-stream", fmt.Sprintf("%s-feature%d.npy", m.Name, id), activations.EncodeNpy(row, 1, sa.DIn)), nil
}

func (s *Server) behaviourVector(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	name := r.PathValue("behaviour")
	b, ok := an.atlas.Behaviours[name]
	if !ok {
		known := make([]string, 0, len(an.atlas.Behaviours))
		for k := range an.atlas.Behaviours {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, errorf(http.StatusNotFound, "SAE %s has no behaviour %q (known: %v)", m.Name, name, known)
	}
	if b.Vector == nil {
		return nil, errorf(http.StatusConflict, "SAE %s has no vector for %s: %s", m.Name, name, b.Error)
	}
	return download("application/octet-stream", fmt.Sprintf("%s-%s.npy", m.Name, name), activations.EncodeNpy(b.Vector, 1, sa.DIn)), nil
}

// exportZip saves the SAE as a SAELens directory in a temporary place and
// sends it zipped.
func (s *Server) exportZip(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, err := s.saeOf(r)
	if err != nil {
		return nil, err
	}
	_, _, _, sa, _ := m.snapshot()
	if sa == nil {
		return nil, errorf(http.StatusConflict, "SAE %s is still training", m.Name)
	}
	tmp, err := os.MkdirTemp("", "rise-export-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, m.Name)
	if err := sae.Save(dir, sa, sae.SaveOptions{}); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, name := range []string{"cfg.json", "sae_weights.safetensors"} {
		if err := addToZip(zw, m.Name+"/"+name, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return download("application/zip", m.Name+".zip", b.Bytes()), nil
}

// addToZip copies the regular file at path into the archive as name.
func addToZip(zw *zip.Writer, name, path string) error {
	in, _, err := files.OpenRegular(path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := zw.Create(name)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return err
}
