package deploy_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Kubernetes manifests decode strictly into the API's own types (no
// unknown or misspelled field, every value of its type), and hang
// together: the StatefulSet's headless Service publishes pods that are not
// ready, the seeds name it, the probes ask /healthz and /readyz on a port
// the container has, every volume is mounted, and the Services and the
// budget select the pods.
func TestKubernetesManifests(t *testing.T) {
	raw, err := os.ReadFile("k8s/objstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	dec := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	var (
		services []*corev1.Service
		sts      *appsv1.StatefulSet
		pdb      *policyv1.PodDisruptionBudget
	)
	for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		switch o := obj.(type) {
		case *corev1.Service:
			services = append(services, o)
		case *appsv1.StatefulSet:
			sts = o
		case *policyv1.PodDisruptionBudget:
			pdb = o
		default:
			t.Errorf("document %d: unexpected %v", i, gvk)
		}
	}
	if sts == nil || pdb == nil || len(services) != 2 {
		t.Fatalf("want a StatefulSet, a PodDisruptionBudget and two Services; have %v, %v, %d", sts != nil, pdb != nil, len(services))
	}
	labels := sts.Spec.Template.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(sts.Spec.Selector.MatchLabels) || !selects(pdb.Spec.Selector.MatchLabels) {
		t.Error("the StatefulSet's or the budget's selector misses the pods")
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("budget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	var headless *corev1.Service
	for _, s := range services {
		if !selects(s.Spec.Selector) {
			t.Errorf("Service %s selects no pod", s.Name)
		}
		if s.Name == sts.Spec.ServiceName {
			headless = s
		}
	}
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("the StatefulSet's Service %q must be headless and publish pods that are not ready", sts.Spec.ServiceName)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if seeds := env["APP_CLUSTER_NODES"]; !strings.HasPrefix(seeds, headless.Name+":") {
		t.Errorf("APP_CLUSTER_NODES %q does not name the headless Service %s", seeds, headless.Name)
	}
	if env["APP_CLUSTER_SECRET_FILE"] == "" {
		t.Error("gossip and the private API listen on the pod's IP without a cluster secret")
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	probe := func(what string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.Type != intstr.String || ports[p.HTTPGet.Port.StrVal] == 0 {
			t.Errorf("%s probe %+v: want GET %s on a named container port", what, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	for _, s := range services {
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type == intstr.String && ports[p.TargetPort.StrVal] == 0 {
				t.Errorf("Service %s targets port %q, which the container lacks", s.Name, p.TargetPort.StrVal)
			}
		}
	}
	var claims, mounts []string
	for _, v := range sts.Spec.VolumeClaimTemplates {
		claims = append(claims, v.Name)
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		claims = append(claims, v.Name)
	}
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.Name)
	}
	slices.Sort(claims)
	slices.Sort(mounts)
	if !slices.Equal(claims, mounts) {
		t.Errorf("volumes %v, mounts %v", claims, mounts)
	}
	for _, dir := range []string{"/data/state", "/data/files"} {
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir }) {
			t.Errorf("nothing mounted at %s: the node's data would be lost with its pod", dir)
		}
	}
}
