package report

import (
	"math"

	"github.com/rise-interp/rise/sae"
)

// CurveKey is the cfg.json metadata entry that holds an SAE's training
// curve, as rise train and the workbench record it.
const CurveKey = "rise_training_curve"

// curvePoints is about the most points a TrainingCurve keeps.
const curvePoints = 200

// TrainingCurve is a training run's losses at evenly spaced steps (about
// curvePoints of them, and the last), for cfg.json's metadata. A resumed
// run records the steps it ran itself.
type TrainingCurve struct {
	Every        int       `json:"every"`
	Step         []int     `json:"step"`
	Loss         []float64 `json:"loss"`
	MSE          []float64 `json:"mse"`
	L0           []float64 `json:"l0"`
	DeadFraction []float64 `json:"dead_fraction"`
	LR           []float64 `json:"lr"`
}

// Add records the step when it falls on the curve's spacing (or is the
// last); a step with a loss that is not a number is left out, as JSON has
// no NaN.
func (c *TrainingCurve) Add(ev sae.TrainEvent) {
	if c.Every == 0 {
		c.Every = max(1, (ev.Steps+curvePoints-1)/curvePoints)
	}
	if ev.Step%c.Every != 0 && ev.Step != ev.Steps {
		return
	}
	for _, v := range []float64{ev.Loss.Total, ev.Loss.MSE, ev.Loss.L0, ev.DeadFraction, ev.LR} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
	}
	c.Step = append(c.Step, ev.Step)
	c.Loss = append(c.Loss, ev.Loss.Total)
	c.MSE = append(c.MSE, ev.Loss.MSE)
	c.L0 = append(c.L0, ev.Loss.L0)
	c.DeadFraction = append(c.DeadFraction, ev.DeadFraction)
	c.LR = append(c.LR, ev.LR)
}
