package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/self/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// procStat holds the fields of /proc/self/stat the process_* metrics need.
type procStat struct {
	cpuSeconds float64 // utime + stime
	startTicks float64 // starttime, clock ticks after boot
	vsize, rss float64 // bytes
}

// readProcStat parses /proc/self/stat (see proc(5)).
func readProcStat(path string) (procStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, fmt.Errorf("metrics: %w", err)
	}
	// comm (field 2) is in parentheses and may hold anything: parse after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("metrics: %s: no command field", path)
	}
	// f[0] is field 3 (state): field n of proc(5) is f[n-3].
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("metrics: %s: %d fields", path, len(f)+2)
	}
	var v [5]float64
	for j, n := range []int{14, 15, 22, 23, 24} { // utime stime starttime vsize rss
		u, err := strconv.ParseUint(f[n-3], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("metrics: %s field %d: %w", path, n, err)
		}
		v[j] = float64(u)
	}
	return procStat{
		cpuSeconds: (v[0] + v[1]) / userHZ,
		startTicks: v[2],
		vsize:      v[3],
		rss:        v[4] * float64(os.Getpagesize()),
	}, nil
}

// readBootTime reads the boot time, in seconds since the epoch, from /proc/stat.
func readBootTime() (float64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			t, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("metrics: /proc/stat btime: %w", err)
			}
			return float64(t), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: /proc/stat: %w", err)
	}
	return 0, errors.New("metrics: /proc/stat: no btime")
}

// countOpenFDs counts the entries of /proc/self/fd (the one reading it included).
func countOpenFDs() (float64, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer func() { _ = d.Close() }()
	n := 0
	for {
		names, err := d.Readdirnames(512)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return float64(n), nil
		}
		if err != nil {
			return 0, fmt.Errorf("metrics: /proc/self/fd: %w", err)
		}
	}
}

// readMaxFDs reads the soft limit of open files from /proc/self/limits.
func readMaxFDs(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		if f[0] == "unlimited" {
			return math.MaxUint64, nil
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %s: %w", path, err)
		}
		return float64(v), nil
	}
	return 0, fmt.Errorf("metrics: %s: no open files limit", path)
}

// single is a family of one unlabelled sample.
func single(name, help string, k kind, v float64) *familyRows {
	f := newFamily(name, help, k, nil)
	fr := newRows(&f)
	fr.add(nil, nil, v)
	return fr
}

// processFamilies reads the process_* metrics; those that cannot be read are left out.
func (r *Registry) processFamilies() []*familyRows {
	var out []*familyRows
	if st, err := readProcStat("/proc/self/stat"); err == nil {
		out = append(out,
			single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", kindCounter, st.cpuSeconds),
			single("process_resident_memory_bytes", "Resident memory size in bytes.", kindGauge, st.rss),
			single("process_virtual_memory_bytes", "Virtual memory size in bytes.", kindGauge, st.vsize))
		if boot, err := r.bootTime(); err == nil {
			out = append(out, single("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
				kindGauge, boot+st.startTicks/userHZ))
		}
	}
	if n, err := countOpenFDs(); err == nil {
		out = append(out, single("process_open_fds", "Number of open file descriptors.", kindGauge, n))
	}
	if n, err := readMaxFDs("/proc/self/limits"); err == nil {
		out = append(out, single("process_max_fds", "Maximum number of open file descriptors.", kindGauge, n))
	}
	return out
}

// goFamilies reads the go_* metrics from runtime/metrics, which, unlike
// runtime.ReadMemStats, does not stop the world.
func goFamilies() []*familyRows {
	const (
		goroutines  = "/sched/goroutines:goroutines"
		threads     = "/sched/threads/total:threads"
		heapObjects = "/memory/classes/heap/objects:bytes"
		heapUnused  = "/memory/classes/heap/unused:bytes"
		allocs      = "/gc/heap/allocs:bytes"
		objects     = "/gc/heap/objects:objects"
		goal        = "/gc/heap/goal:bytes"
		stacks      = "/memory/classes/heap/stacks:bytes"
		total       = "/memory/classes/total:bytes"
		gogc        = "/gc/gogc:percent"
		memLimit    = "/gc/gomemlimit:bytes"
		maxProcs    = "/sched/gomaxprocs:threads"
	)
	names := []string{goroutines, threads, heapObjects, heapUnused, allocs, objects, goal, stacks, total, gogc, memLimit, maxProcs}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	v := make(map[string]float64, len(samples))
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[s.Name] = float64(s.Value.Uint64())
		}
	}
	info := newFamily("go_info", "Information about the Go environment.", kindGauge, []string{"version"})
	infoRows := newRows(&info)
	infoRows.add(nil, []string{runtime.Version()}, 1)
	out := []*familyRows{infoRows}
	add := func(name, help string, k kind, keys ...string) {
		sum := 0.0
		for _, key := range keys {
			x, ok := v[key]
			if !ok {
				return
			}
			sum += x
		}
		out = append(out, single(name, help, k, sum))
	}
	add("go_goroutines", "Number of goroutines that currently exist.", kindGauge, goroutines)
	add("go_threads", "Number of OS threads created.", kindGauge, threads)
	add("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.",
		kindGauge, heapObjects)
	add("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.",
		kindCounter, allocs)
	add("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.",
		kindGauge, heapObjects)
	add("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes",
		kindGauge, heapObjects, heapUnused)
	add("go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.",
		kindGauge, objects)
	add("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.",
		kindGauge, goal)
	add("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.",
		kindGauge, stacks)
	add("go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.",
		kindGauge, total)
	add("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.",
		kindGauge, gogc)
	add("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.",
		kindGauge, memLimit)
	add("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.",
		kindGauge, maxProcs)
	return out
}
