// Package label splits chain-of-thought responses into reasoning steps and
// labels each step with the behaviours it shows.
//
// Steps are the pieces of a response between delimiters ("\n\n" by default,
// the segmentation of RISE, arXiv 2512.23988), optionally split further into
// sentences. Labels come from keyword rules: the default rules are the lists
// of RISE Table 3, which RISE inherits from SEAL (Chen et al., "SEAL:
// Steerable reasoning calibration of large language models for free", arXiv
// 2504.07986). A step that says "wait", "verify", "let me check", ... is a
// reflection step, one that says "alternatively", "another approach", ... is
// a backtracking step (SEAL's "transition" thoughts), and a step that matches
// no rule is "other". Labels already present in a dump, for example from an
// LLM judge, are kept as given.
//
// The package also reads the Thought Anchors traces (Bogdan et al., arXiv
// 2506.19143), whose sentence-like chunks carry GPT-4o function tags, and
// measures how the keyword labels line up with those tags.
package label
