package troubleshoot

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"
)

// LastCheckMetric is the controller's gauge of the time of each
// SecretSync's latest check, whatever its outcome. The controller keeps it in
// memory: a check that finds nothing new writes nothing to the API server,
// so status.lastSuccessfulSyncTime does not move with it.
const LastCheckMetric = "kvsync_secretsync_last_check_timestamp_seconds"

// LastChecks reads the time of each SecretSync's latest check from the
// controller's metrics in the Prometheus text format. Metrics without
// LastCheckMetric give an empty map: a replica that is not the leader
// checks nothing.
func LastChecks(metrics string) (map[types.NamespacedName]time.Time, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(metrics))
	if err != nil {
		return nil, fmt.Errorf("parsing the controller's metrics: %w", err)
	}
	checks := map[types.NamespacedName]time.Time{}
	for _, m := range families[LastCheckMetric].GetMetric() {
		var key types.NamespacedName
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "namespace":
				key.Namespace = l.GetValue()
			case "name":
				key.Name = l.GetValue()
			}
		}
		v := m.GetGauge().GetValue()
		if key.Name == "" || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			continue
		}
		sec, frac := math.Modf(v)
		checks[key] = time.Unix(int64(sec), int64(frac*1e9))
	}
	return checks, nil
}
