package model

// Tokenizer turns text into token ids and back. Implementations: the
// llama2.c tokenizer (tok*.bin, a SentencePiece-style BPE over scored
// pieces) and the byte-level BPE of a Hugging Face tokenizer.json.
type Tokenizer interface {
	// Encode returns the ids of text, preceded by the BOS token when bos
	// is set (and the tokenizer has one). Special tokens written in the
	// text (such as "<|im_start|>") are recognised only when special is
	// set; otherwise they are encoded as plain text.
	Encode(text string, bos, special bool) []int
	// Decode returns the text of ids. Special tokens are left out unless
	// special is set. Bytes that do not make complete UTF-8 characters at
	// the end of ids are kept back, so decoding a growing sequence and
	// printing the new suffix never prints half a character.
	Decode(ids []int, special bool) string
	// VocabSize is the number of ids the tokenizer can produce.
	VocabSize() int
	// BOS is the beginning-of-sequence id, or -1 if there is none.
	BOS() int
	// EOS lists the ids that end a generation (end of sequence, end of
	// turn); it may be empty.
	EOS() []int
	// Token returns the text piece of one id as stored, for display.
	Token(id int) string
}
