// keda-formula evaluates a KEDA ScaledObject's scalingModifiers formula the way KEDA does, with the
// expression library KEDA uses (expr-lang, at the version of KEDA's go.mod), so the manifest tests can check
// what a formula computes instead of trusting it.
//
// stdin: {"formula": "...", "triggers": ["lag", ...], "cases": [{"lag": 6000, ...}, ...]}
// stdout: {"results": [2000, ...]}; exit 1 with the error when KEDA's admission check would refuse it
// (KEDA compiles the formula against the trigger names, each set to -1, and runs it once).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/expr-lang/expr"
)

type request struct {
	Formula  string               `json:"formula"`
	Triggers []string             `json:"triggers"`
	Cases    []map[string]float64 `json:"cases"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail(err)
	}
	dummy := map[string]float64{}
	for _, name := range req.Triggers {
		dummy[name] = -1
	}
	program, err := expr.Compile(req.Formula, expr.Env(dummy))
	if err != nil {
		fail(err)
	}
	if _, err := expr.Run(program, dummy); err != nil {
		fail(err)
	}
	results := []float64{}
	for _, values := range req.Cases {
		out, err := expr.Run(program, values)
		if err != nil {
			fail(err)
		}
		number, ok := toFloat(out)
		if !ok {
			fail(fmt.Errorf("the formula gave %v (%T), not a number", out, out))
		}
		results = append(results, number)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string][]float64{"results": results}); err != nil {
		fail(err)
	}
}

func toFloat(value any) (float64, bool) {
	switch v := value.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
