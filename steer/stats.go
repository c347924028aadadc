package steer

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Interval is a mean over prompts with its 95% bootstrap interval.
type Interval struct {
	Mean float64 `json:"mean"`
	Lo   float64 `json:"lo"`
	Hi   float64 `json:"hi"`
}

// Resamples of the bootstrap intervals and sign flips of the paired test.
const (
	bootstrapResamples = 2000
	permutationDraws   = 10000
)

// bootstrap returns the mean of x and its 95% percentile bootstrap interval
// over bootstrapResamples resamples of the prompts (Efron & Tibshirani,
// An Introduction to the Bootstrap, ch. 13).
func bootstrap(x []float64, rng *rand.Rand) Interval {
	n := len(x)
	if n == 0 {
		return Interval{math.NaN(), math.NaN(), math.NaN()}
	}
	iv := Interval{Mean: mean(x)}
	means := make([]float64, bootstrapResamples)
	for b := range means {
		var s float64
		for range n {
			s += x[rng.IntN(n)]
		}
		means[b] = s / float64(n)
	}
	slices.Sort(means)
	iv.Lo = quantile(means, 0.025)
	iv.Hi = quantile(means, 0.975)
	return iv
}

// pairedPValue tests whether the per-prompt differences a[i] - b[i] (the
// same prompts and seeds under two conditions) have mean zero: the
// two-sided p-value of a sign-flip permutation test of their mean, exact
// when there are at most 16 prompts with a difference and otherwise from
// permutationDraws random flips, counted as (k+1)/(draws+1) so that it is
// never 0 (Phipson & Smyth 2010).
func pairedPValue(a, b []float64, rng *rand.Rand) float64 {
	var d []float64
	for i := range a {
		if v := a[i] - b[i]; v != 0 {
			d = append(d, v)
		}
	}
	if len(d) == 0 {
		return 1
	}
	obs := math.Abs(sum(d))
	const eps = 1e-9
	if len(d) <= 16 {
		k := 0
		for mask := range 1 << len(d) {
			var s float64
			for i, v := range d {
				if mask&(1<<i) != 0 {
					s -= v
				} else {
					s += v
				}
			}
			if math.Abs(s) >= obs-eps {
				k++
			}
		}
		return float64(k) / float64(int(1)<<len(d))
	}
	k := 0
	for range permutationDraws {
		var s float64
		for _, v := range d {
			if rng.Uint64()&1 == 1 {
				s -= v
			} else {
				s += v
			}
		}
		if math.Abs(s) >= obs-eps {
			k++
		}
	}
	return float64(k+1) / float64(permutationDraws+1)
}

// quantile of sorted values, linearly interpolated (numpy's default).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	h := q * float64(len(sorted)-1)
	i := int(h)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func mean(x []float64) float64 { return sum(x) / float64(len(x)) }
