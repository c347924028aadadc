package dashboard

import "unicode"

// DefaultDelimiter ends every step (DESIGN: steps are cut at "\n\n").
const DefaultDelimiter = "\n\n"

// How a step becomes Neuronpedia's tokens and values.
//
// Neuronpedia stores an activation example as a list of token strings and
// one value per token. rise records one activation per step: the residual
// stream at the delimiter token that ends the step, not one per token, and
// a dump keeps the steps' texts but not their tokenizer's pieces. So an
// example is written as the previous step of the same trace (context), its
// delimiter, the step and its delimiter, the texts cut into words, each
// with the whitespace that follows it (a stand-in for tokens that
// concatenates back to the text exactly), and
//
//   - every word piece has value 0 (rise has no value there);
//   - each delimiter token carries its step's value: the previous step's
//     delimiter the feature's value on the previous step, the last token
//     the example's value, which is the maximum Neuronpedia shows
//     (maxValueTokenIndex, qualifyingTokenIndex).
//
// A reader of the export should read the values as "the feature's value on
// the step this delimiter ends".

// Pieces cuts text into words, each with the whitespace that follows it;
// leading whitespace is a piece of its own. Concatenating the pieces gives
// text back.
func Pieces(text string) []string {
	var out []string
	start, inSpace := 0, true
	for i, r := range text {
		sp := unicode.IsSpace(r)
		if !sp && inSpace && i > start {
			out = append(out, text[start:i])
			start = i
		}
		inSpace = sp
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// exampleTokens lays an example out as Neuronpedia tokens and values (see
// above); last is the index of the step's own delimiter token.
func exampleTokens(x Example, delim string) (tokens []string, values []float32, last int) {
	if x.Prev != nil {
		tokens = append(tokens, Pieces(x.Prev.Text)...)
		for range len(tokens) {
			values = append(values, 0)
		}
		tokens = append(tokens, delim)
		values = append(values, x.PrevValue)
	}
	for _, p := range Pieces(x.Step.Text) {
		tokens = append(tokens, p)
		values = append(values, 0)
	}
	tokens = append(tokens, delim)
	values = append(values, x.Value)
	return tokens, values, len(tokens) - 1
}
