package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// leader runs work while this replica holds the Lease name in namespace, until ctx
// ends; it campaigns again when it loses the Lease.
func leader(ctx context.Context, client kubernetes.Interface, namespace, name string, log *slog.Logger, work func(context.Context) error) error {
	id := os.Getenv("MESH_POD_NAME")
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: name, Namespace: namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock: lock, ReleaseOnCancel: true, Name: name,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					log.Info("leading", "lease", name)
					if err := work(ctx); err != nil {
						log.Warn("leader work stopped", "err", err)
					}
				},
				OnStoppedLeading: func() { log.Info("not leading", "lease", name) },
			},
		})
	}
	return nil
}
