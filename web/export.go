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

func writeChart(w http.ResponseWriter, f atlas.Format, b []byte, name string) {
	if f == atlas.SVG {
		w.Header().Set("Content-Type", "image/svg+xml")
	} else {
		w.Header().Set("Content-Type", "image/png")
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", name+"."+string(f)))
	w.Write(b)
}

func download(w http.ResponseWriter, contentType, name string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Write(b)
}

func (s *Server) mapChart(f atlas.Format) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.drawMap(w, r, f) }
}

func (s *Server) drawMap(w http.ResponseWriter, r *http.Request, f atlas.Format) {
	m, _, an, err := s.ready(r)
	if err != nil {
		fail(w, err)
		return
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
		fail(w, errorf(http.StatusBadRequest, "parameter color: expected behaviour or cluster, found %q", c))
		return
	}
	var b bytes.Buffer
	if err := atlas.RenderMap(&b, f, fmt.Sprintf("%s: decoder columns (%s)", m.Name, a.Layout), a.XY(), groups); err != nil {
		fail(w, err)
		return
	}
	writeChart(w, f, b.Bytes(), m.Name+"-map")
}

func (s *Server) atlasFile(w http.ResponseWriter, r *http.Request) {
	m, _, an, err := s.ready(r)
	if err != nil {
		fail(w, err)
		return
	}
	b, err := json.MarshalIndent(an.atlas, "", " ")
	if err != nil {
		fail(w, err)
		return
	}
	download(w, "application/json", m.Name+"-atlas.json", append(b, '\n'))
}

func (s *Server) featureVector(w http.ResponseWriter, r *http.Request) {
	m, sa, _, err := s.ready(r)
	if err != nil {
		fail(w, err)
		return
	}
	id, err := featureID(r, sa.DSae)
	if err != nil {
		fail(w, err)
		return
	}
	row := sa.WDec[id*sa.DIn : (id+1)*sa.DIn]
	download(w, "application/octet-stream", fmt.Sprintf("%s-feature%d.npy", m.Name, id), activations.EncodeNpy(row, 1, sa.DIn))
}

func (s *Server) behaviourVector(w http.ResponseWriter, r *http.Request) {
	m, sa, an, err := s.ready(r)
	if err != nil {
		fail(w, err)
		return
	}
	name := r.PathValue("behaviour")
	b, ok := an.atlas.Behaviours[name]
	if !ok {
		known := make([]string, 0, len(an.atlas.Behaviours))
		for k := range an.atlas.Behaviours {
			known = append(known, k)
		}
		sort.Strings(known)
		fail(w, errorf(http.StatusNotFound, "SAE %s has no behaviour %q (known: %v)", m.Name, name, known))
		return
	}
	if b.Vector == nil {
		fail(w, errorf(http.StatusConflict, "SAE %s has no vector for %s: %s", m.Name, name, b.Error))
		return
	}
	download(w, "application/octet-stream", fmt.Sprintf("%s-%s.npy", m.Name, name), activations.EncodeNpy(b.Vector, 1, sa.DIn))
}

// exportZip saves the SAE as a SAELens directory in a temporary place and
// sends it zipped.
func (s *Server) exportZip(w http.ResponseWriter, r *http.Request) {
	m, err := s.saeOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	_, _, _, sa, _ := m.snapshot()
	if sa == nil {
		fail(w, errorf(http.StatusConflict, "SAE %s is still training", m.Name))
		return
	}
	tmp, err := os.MkdirTemp("", "rise-export-")
	if err != nil {
		fail(w, err)
		return
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, m.Name)
	if err := sae.Save(dir, sa, sae.SaveOptions{}); err != nil {
		fail(w, err)
		return
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, name := range []string{"cfg.json", "sae_weights.safetensors"} {
		if err := addToZip(zw, m.Name+"/"+name, filepath.Join(dir, name)); err != nil {
			fail(w, err)
			return
		}
	}
	if err := zw.Close(); err != nil {
		fail(w, err)
		return
	}
	download(w, "application/zip", m.Name+".zip", b.Bytes())
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
