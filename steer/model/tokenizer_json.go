package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/rise-interp/rise/internal/files"
)

// endOfTurnTokens are added tokens that end a generation whenever the
// vocabulary has them: ChatML's end of turn, GPT-2's and Qwen's end of
// text, DeepSeek's end of sentence and Llama 3's end of text and of turn.
var endOfTurnTokens = []string{
	"<|im_end|>",
	"<|endoftext|>",
	"<｜end▁of▁sentence｜>",
	"<|end_of_text|>",
	"<|eot_id|>",
	"<|eom_id|>",
}

// tjFile is the part of tokenizer.json that is read.
type tjFile struct {
	AddedTokens   []tjAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type tjAddedToken struct {
	ID      *int   `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type tjModel struct {
	Type                    *string           `json:"type"`
	Vocab                   map[string]int    `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
}

// tjComponent is a normalizer, pre-tokenizer, post-processor or decoder:
// a type and, for "Sequence", its members under one of several names.
type tjComponent struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Processors     []json.RawMessage `json:"processors"`
	Decoders       []json.RawMessage `json:"decoders"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
	Pattern        struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior string `json:"behavior"`
	Invert   bool   `json:"invert"`
	// TemplateProcessing.
	Single        []json.RawMessage `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

// tjConfig is the part of tokenizer_config.json that is read.
type tjConfig struct {
	BOSToken    json.RawMessage `json:"bos_token"`
	EOSToken    json.RawMessage `json:"eos_token"`
	AddBOSToken *bool           `json:"add_bos_token"`
}

// LoadTokenizerJSON reads a Hugging Face tokenizer.json holding a
// byte-level BPE model ("model": {"type": "BPE"} with a vocab map and
// merges written as "a b" strings or ["a", "b"] pairs). Supported
// components: normalizer null, NFC, NFD, NFKC, NFKD or a Sequence of
// them; pre_tokenizer ByteLevel and/or Split with the GPT-2, Llama 3 or
// Qwen2 pattern (other patterns are refused); decoder ByteLevel. The BOS
// id comes from a TemplateProcessing post_processor that starts with a
// special token, or from a tokenizer_config.json in the same directory
// (bos_token with add_bos_token); without either BOS is -1. EOS lists the
// config's eos_token and whichever of <|im_end|>, <|endoftext|>,
// <｜end▁of▁sentence｜>, <|end_of_text|>, <|eot_id|> and <|eom_id|> the
// vocabulary has. Errors name the file and the offending field.
//
// Not supported: the lstrip, rstrip, single_word and normalized options of
// added tokens (added tokens are matched literally in the raw text) and
// BPE dropout (ignored, as at inference).
func LoadTokenizerJSON(path string) (*BPETokenizer, error) {
	data, err := readBounded(path, "tokenizer.json")
	if err != nil {
		return nil, err
	}
	t, err := parseTokenizerJSON(path, data)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	cfg, err := readBounded(cfgPath, "tokenizer config")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("tokenizer config: %w", err)
	default:
		if err := t.applyConfig(cfgPath, cfg); err != nil {
			return nil, err
		}
	}
	t.eos = appendEndOfTurn(t.eos, t.vocab)
	return t, nil
}

// maxTokenizerBytes bounds the size of a tokenizer.json (and of its
// tokenizer_config.json): the largest published ones, Gemma 3's with 262k
// tokens, are about 33 MB, and parsing holds several times the file in
// memory.
const maxTokenizerBytes = 64 << 20

// maxMerges bounds the merges of a tokenizer.json: a merge makes a token,
// and there are at most maxBPEID of those (Llama 3 has 280k merges,
// Qwen2 151k).
const maxMerges = maxBPEID

// readBounded reads a regular tokenizer file of at most maxTokenizerBytes;
// what names it in errors.
func readBounded(path, what string) ([]byte, error) {
	f, st, err := files.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if st.Size() > maxTokenizerBytes {
		return nil, fmt.Errorf("%s %s: %d bytes: expected at most %d MiB (the largest published tokenizers are about 33 MB)", what, path, st.Size(), maxTokenizerBytes>>20)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenizerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) > maxTokenizerBytes {
		return nil, fmt.Errorf("%s %s: more than %d MiB: expected at most that", what, path, maxTokenizerBytes>>20)
	}
	return b, nil
}

// parseTokenizerJSON builds a tokenizer from the bytes of a tokenizer.json;
// path is used in error messages.
func parseTokenizerJSON(path string, data []byte) (*BPETokenizer, error) {
	errf := func(field, format string, args ...any) error {
		return fmt.Errorf("tokenizer.json %s: %s: %s", path, field, fmt.Sprintf(format, args...))
	}
	var f tjFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: not valid JSON: %w", path, err)
	}
	if tjNull(f.Model) {
		return nil, errf("model", "missing, expected a BPE model with vocab and merges")
	}
	var m tjModel
	if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, errf("model", "expected an object with vocab (token to id) and merges: %v", err)
	}
	if m.Type != nil && *m.Type != "BPE" {
		return nil, errf("model.type", "is %q, expected \"BPE\"", *m.Type)
	}
	if m.Vocab == nil {
		return nil, errf("model.vocab", "missing, expected an object mapping tokens to ids")
	}
	if len(m.Vocab) > maxBPEID {
		return nil, errf("model.vocab", "holds %d tokens, expected at most %d", len(m.Vocab), maxBPEID)
	}
	if len(m.Merges) > maxMerges {
		return nil, errf("model.merges", "holds %d merges, expected at most %d", len(m.Merges), maxMerges)
	}
	if len(f.AddedTokens) > maxBPEID {
		return nil, errf("added_tokens", "holds %d tokens, expected at most %d", len(f.AddedTokens), maxBPEID)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return nil, errf("model.continuing_subword_prefix", "is %q, only byte-level BPE without one is supported", *m.ContinuingSubwordPrefix)
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errf("model.end_of_word_suffix", "is %q, only byte-level BPE without one is supported", *m.EndOfWordSuffix)
	}
	if m.ByteFallback {
		return nil, errf("model.byte_fallback", "is true, only byte-level BPE (byte_fallback false) is supported")
	}

	t := &BPETokenizer{
		path:        path,
		vocab:       make(map[string]int, len(m.Vocab)+len(f.AddedTokens)),
		bpeVocab:    m.Vocab,
		merges:      make(map[[2]int]bpeMerge, len(m.Merges)),
		ignoreMerge: m.IgnoreMerges,
		addedByID:   make(map[int]*addedToken),
		bos:         -1,
		cache:       make(map[string][]int),
		normalize:   func(s string) string { return s },
	}
	maxID := -1
	for tok, id := range m.Vocab {
		if id < 0 || id >= maxBPEID {
			return nil, errf("model.vocab", "token %q has id %d, expected 0..%d", tok, id, maxBPEID-1)
		}
		t.vocab[tok] = id
		maxID = max(maxID, id)
	}
	for i, a := range f.AddedTokens {
		if a.ID == nil {
			return nil, errf(fmt.Sprintf("added_tokens[%d].id", i), "missing for token %q", a.Content)
		}
		if *a.ID < 0 || *a.ID >= maxBPEID {
			return nil, errf(fmt.Sprintf("added_tokens[%d].id", i), "is %d for token %q, expected 0..%d", *a.ID, a.Content, maxBPEID-1)
		}
		if a.Content == "" {
			return nil, errf(fmt.Sprintf("added_tokens[%d].content", i), "is empty, expected the token's text")
		}
		t.added = append(t.added, addedToken{id: *a.ID, content: a.Content, special: a.Special})
		maxID = max(maxID, *a.ID)
	}
	t.tokens = make([]string, maxID+1)
	for tok, id := range m.Vocab {
		t.tokens[id] = tok
	}
	t.addedByFirst = make(map[byte][]*addedToken)
	for i := range t.added {
		a := &t.added[i]
		t.tokens[a.id] = a.content
		t.addedByID[a.id] = a
		t.addedByFirst[a.content[0]] = append(t.addedByFirst[a.content[0]], a)
		if _, ok := t.vocab[a.content]; !ok {
			t.vocab[a.content] = a.id
		}
	}
	for _, list := range t.addedByFirst {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].content) > len(list[j].content) })
	}

	for i, raw := range m.Merges {
		a, b, err := parseMerge(raw)
		if err != nil {
			return nil, errf(fmt.Sprintf("model.merges[%d]", i), "%v", err)
		}
		ida, oka := m.Vocab[a]
		idb, okb := m.Vocab[b]
		idab, okab := m.Vocab[a+b]
		switch {
		case !oka:
			return nil, errf(fmt.Sprintf("model.merges[%d]", i), "token %q is not in the vocab", a)
		case !okb:
			return nil, errf(fmt.Sprintf("model.merges[%d]", i), "token %q is not in the vocab", b)
		case !okab:
			return nil, errf(fmt.Sprintf("model.merges[%d]", i), "merged token %q is not in the vocab", a+b)
		}
		if _, dup := t.merges[[2]int{ida, idb}]; !dup {
			t.merges[[2]int{ida, idb}] = bpeMerge{rank: i, id: idab}
		}
	}
	for b := range 256 {
		t.byteSymbol[b] = -1
		if id, ok := m.Vocab[string(byteToRune[b])]; ok {
			t.byteSymbol[b] = id
		}
	}

	var err error
	if t.normalize, err = parseNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", path, err)
	}
	byteLevel := false
	if err := t.parsePreTokenizer(f.PreTokenizer, "pre_tokenizer", &byteLevel); err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", path, err)
	}
	if !byteLevel {
		return nil, errf("pre_tokenizer", "has no ByteLevel step, expected a byte-level BPE tokenizer")
	}
	if err := checkDecoder(f.Decoder, "decoder"); err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", path, err)
	}
	if err := t.parsePostProcessor(f.PostProcessor, "post_processor"); err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", path, err)
	}
	return t, nil
}

// parseMerge reads one merge, written either as "a b" or as ["a", "b"].
func parseMerge(raw json.RawMessage) (string, string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		a, b, ok := strings.Cut(s, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return "", "", fmt.Errorf("is %q, expected two tokens separated by one space", s)
		}
		return a, b, nil
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return "", "", fmt.Errorf("is %s, expected \"a b\" or [\"a\", \"b\"]", tjAbbrev(string(raw)))
	}
	if pair[0] == "" || pair[1] == "" {
		return "", "", fmt.Errorf("is %s, expected two non-empty tokens", tjAbbrev(string(raw)))
	}
	return pair[0], pair[1], nil
}

// tjAbbrev shortens s for an error message.
func tjAbbrev(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func tjNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// parseNormalizer returns the normalization function of a normalizer
// entry; field names it in errors.
func parseNormalizer(raw json.RawMessage, field string) (func(string) string, error) {
	c, err := tjParseComponent(raw, field)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "": // null or absent
		return func(s string) string { return s }, nil
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Sequence":
		var fns []func(string) string
		err := tjEach(c.Normalizers, field, "normalizers", func(n json.RawMessage, item string) error {
			fn, err := parseNormalizer(n, item)
			fns = append(fns, fn)
			return err
		})
		if err != nil {
			return nil, err
		}
		return func(s string) string {
			for _, fn := range fns {
				s = fn(s)
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("%s.type: is %q, expected null, NFC, NFD, NFKC, NFKD or Sequence", field, c.Type)
}

// parsePreTokenizer appends the splitting steps of a pre_tokenizer entry
// and records whether it has a ByteLevel step.
func (t *BPETokenizer) parsePreTokenizer(raw json.RawMessage, field string, byteLevel *bool) error {
	return tjLeaves(raw, field, "pretokenizers", func(c tjComponent, field string) error {
		return t.preTokenizerStep(c, field, byteLevel)
	})
}

// preTokenizerStep appends the splitting step of a ByteLevel or Split
// pre-tokenizer.
func (t *BPETokenizer) preTokenizerStep(c tjComponent, field string, byteLevel *bool) error {
	switch c.Type {
	case "ByteLevel":
		*byteLevel = true
		// Hugging Face's defaults: add_prefix_space and use_regex true.
		if c.AddPrefixSpace == nil || *c.AddPrefixSpace {
			t.addPrefix = true
		}
		if c.UseRegex == nil || *c.UseRegex {
			t.splitters = append(t.splitters, splitGPT2)
		}
		return nil
	case "Split":
		if c.Pattern.Regex == nil {
			if c.Pattern.String != nil {
				return fmt.Errorf("%s.pattern: is the string %q, expected a Regex pattern", field, *c.Pattern.String)
			}
			return fmt.Errorf("%s.pattern: missing, expected {\"Regex\": ...}", field)
		}
		if c.Behavior != "Isolated" {
			return fmt.Errorf("%s.behavior: is %q, expected \"Isolated\"", field, c.Behavior)
		}
		if c.Invert {
			return fmt.Errorf("%s.invert: is true, expected false", field)
		}
		sp, ok := knownPatterns[*c.Pattern.Regex]
		if !ok {
			return fmt.Errorf("%s.pattern.Regex: %q is not a known pattern, expected the GPT-2, Llama 3 or Qwen2 pre-tokenizer regex", field, tjAbbrev(*c.Pattern.Regex))
		}
		t.splitters = append(t.splitters, sp)
		return nil
	}
	return fmt.Errorf("%s.type: is %q, expected ByteLevel, Split or Sequence", field, c.Type)
}

// checkDecoder accepts a ByteLevel decoder, alone or in a Sequence.
func checkDecoder(raw json.RawMessage, field string) error {
	c, err := tjParseComponent(raw, field)
	if err != nil {
		return err
	}
	switch c.Type {
	case "": // null or absent
		return fmt.Errorf("%s: missing, expected a ByteLevel decoder", field)
	case "ByteLevel":
		return nil
	case "Sequence":
		for i, d := range c.Decoders {
			if checkDecoder(d, fmt.Sprintf("%s.decoders[%d]", field, i)) == nil {
				return nil
			}
		}
		return fmt.Errorf("%s: Sequence has no ByteLevel decoder, expected one", field)
	}
	return fmt.Errorf("%s.type: is %q, expected ByteLevel", field, c.Type)
}

// parsePostProcessor takes the BOS id from a TemplateProcessing whose
// single-sequence template starts with a special token.
func (t *BPETokenizer) parsePostProcessor(raw json.RawMessage, field string) error {
	return tjLeaves(raw, field, "processors", t.postProcessorStep)
}

// postProcessorStep takes the BOS id from a TemplateProcessing; other
// post-processors add nothing rise reads.
func (t *BPETokenizer) postProcessorStep(c tjComponent, field string) error {
	if c.Type != "TemplateProcessing" || len(c.Single) == 0 {
		return nil
	}
	var first struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	}
	if err := json.Unmarshal(c.Single[0], &first); err != nil {
		return fmt.Errorf("%s.single[0]: expected a SpecialToken or Sequence item: %v", field, err)
	}
	if first.SpecialToken == nil {
		return nil
	}
	name := first.SpecialToken.ID
	if st, ok := c.SpecialTokens[name]; ok && len(st.IDs) > 0 {
		t.bos = st.IDs[0]
	} else if id, ok := t.vocab[name]; ok {
		t.bos = id
	} else {
		return fmt.Errorf("%s.single[0]: special token %q has no id in special_tokens or the vocab", field, name)
	}
	if t.bos < 0 || t.bos >= len(t.tokens) {
		return fmt.Errorf("%s.special_tokens: %q has id %d, expected 0..%d", field, name, t.bos, len(t.tokens)-1)
	}
	return nil
}

// applyConfig reads bos_token, eos_token and add_bos_token from a
// tokenizer_config.json.
func (t *BPETokenizer) applyConfig(path string, data []byte) error {
	var c tjConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("tokenizer config %s: not valid JSON: %w", path, err)
	}
	tokenID := func(field string, raw json.RawMessage) (int, error) {
		if tjNull(raw) {
			return -1, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return -1, fmt.Errorf("tokenizer config %s: %s: is %s, expected a string or an object with content", path, field, tjAbbrev(string(raw)))
			}
			s = obj.Content
		}
		id, ok := t.vocab[s]
		if !ok {
			return -1, fmt.Errorf("tokenizer config %s: %s: %q is not in the vocabulary of %s", path, field, s, t.path)
		}
		return id, nil
	}
	bos, err := tokenID("bos_token", c.BOSToken)
	if err != nil {
		return err
	}
	eos, err := tokenID("eos_token", c.EOSToken)
	if err != nil {
		return err
	}
	if c.AddBOSToken != nil {
		if *c.AddBOSToken {
			if bos < 0 {
				return fmt.Errorf("tokenizer config %s: add_bos_token is true but bos_token is missing", path)
			}
			t.bos = bos
		} else {
			t.bos = -1
		}
	}
	if eos >= 0 {
		t.eos = append(t.eos, eos)
	}
	return nil
}

// appendEndOfTurn adds the ids of the end-of-turn tokens that vocab has
// and eos lacks.
func appendEndOfTurn(eos []int, vocab map[string]int) []int {
	for _, s := range endOfTurnTokens {
		id, ok := vocab[s]
		if ok && !slices.Contains(eos, id) {
			eos = append(eos, id)
		}
	}
	return eos
}

// tjEach parses the items of a Sequence component's list key in order,
// naming item i field.key[i], and returns the first error.
func tjEach(items []json.RawMessage, field, key string, parse func(raw json.RawMessage, item string) error) error {
	for i, raw := range items {
		if err := parse(raw, fmt.Sprintf("%s.%s[%d]", field, key, i)); err != nil {
			return err
		}
	}
	return nil
}

// tjLeaves calls visit on each component of raw that is not a Sequence,
// in order, going into a Sequence through its list key ("pretokenizers",
// "processors"); a null or absent component has none.
func tjLeaves(raw json.RawMessage, field, key string, visit func(c tjComponent, field string) error) error {
	c, err := tjParseComponent(raw, field)
	switch {
	case err != nil:
		return err
	case c.Type == "":
		return nil
	case c.Type == "Sequence":
		return tjEach(c.list(key), field, key, func(item json.RawMessage, name string) error {
			return tjLeaves(item, name, key, visit)
		})
	}
	return visit(c, field)
}

// list returns the component's list under a Sequence key that tjLeaves
// walks; its callers pass one of the two as a constant.
func (c *tjComponent) list(key string) []json.RawMessage {
	switch key {
	case "pretokenizers":
		return c.Pretokenizers
	case "processors":
		return c.Processors
	}
	panic("tokenizer.json: tjLeaves walks no Sequence list " + key)
}

// tjParseComponent reads a typed component (normalizer, pre_tokenizer,
// decoder, post_processor): one of type "" when it is null or absent.
func tjParseComponent(raw json.RawMessage, field string) (tjComponent, error) {
	var c tjComponent
	if tjNull(raw) {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%s: expected an object with a type: %v", field, err)
	}
	if c.Type == "" {
		return c, fmt.Errorf("%s: expected an object with a type, found none", field)
	}
	return c, nil
}
