// Command franz-go-bench is the franz-go peer of bench/compare: it produces
// --num-records records to one topic with kgo.Client.Produce and a promise per
// record, and prints one JSON object with throughput, latency, CPU and memory.
// The command line and the JSON are the contract of bench/README.md.
//
// With --transactional-id the records go in transactions of
// --transaction-records (see runTransactional): records/s count committed
// records, and commits/s and the commit latency are reported too.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

type props map[string]string

func (p props) String() string { return fmt.Sprint(map[string]string(p)) }
func (p props) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want name=value, got %q", v)
	}
	p[strings.TrimSpace(k)] = strings.TrimSpace(val)
	return nil
}

// histogram: log-linear, microseconds, 128 sub-buckets per power of two
// (same layout as bench/peers/common/bench.rs).
const subBits = 7
const sub = 1 << subBits

type histogram struct {
	counts [64 * sub]uint64
	total  uint64
	sumUs  float64
	maxUs  uint64
}

func bucket(v uint64) int {
	if v < sub {
		return int(v)
	}
	msb := 63 - bits.LeadingZeros64(v)
	shift := msb - subBits
	s := (v >> uint(shift)) - sub
	return int((uint64(shift+1) << subBits) + s)
}

func bucketValue(i int) float64 {
	if i < sub {
		return float64(i)
	}
	shift := uint(i>>subBits) - 1
	s := uint64(i) & (sub - 1)
	lo := (sub + s) << shift
	return float64(lo) + (float64(uint64(1)<<shift)-1)/2
}

func (h *histogram) record(d time.Duration) {
	us := uint64(d / time.Microsecond)
	h.counts[bucket(us)]++
	h.total++
	h.sumUs += float64(us)
	if us > h.maxUs {
		h.maxUs = us
	}
}

func (h *histogram) quantileMs(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return math.Min(bucketValue(i), float64(h.maxUs)) / 1000
		}
	}
	return float64(h.maxUs) / 1000
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func franzVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				return "franz-go " + d.Version + " (" + bi.GoVersion + ")"
			}
		}
	}
	return "franz-go (unknown)"
}

// timedRecord carries the start of each record's latency (with Go's monotonic
// reading: its due time when paced, else the start of its Produce call) and
// whether it is measured, without a closure per record: kgo hands the promise
// the *kgo.Record it was given, which is the first field, so the promise
// recovers the timedRecord. (kgo truncates Record.Timestamp to milliseconds,
// so that cannot be used.)
type timedRecord struct {
	kgo.Record
	sent     time.Time
	measured bool
}

// osSleepSpan: the last stretch of a wait left to the OS sleep. Go's timers
// (time.Sleep) wake up to about a millisecond late on Linux, so they serve only
// waits longer than this, until this long before the due time.
const osSleepSpan = 2 * time.Millisecond

// sleepUntil waits until t and never returns before it: time.Sleep for all but
// the last osSleepSpan of a long wait, then the OS sleep (nanosleep), as
// bench/peers/common/bench.rs does.
func sleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		if d > osSleepSpan {
			time.Sleep(d - osSleepSpan)
			continue
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

func die(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, "franz-go-bench: "+format+"\n", a...)
	os.Exit(code)
}

func r3(v float64) float64 { return math.Round(v*1000) / 1000 }

func main() {
	p := props{}
	bootstrap := flag.String("bootstrap-server", "", "HOST:PORT")
	topic := flag.String("topic", "", "topic")
	numRecords := flag.Int64("num-records", 0, "records to produce (warmup included)")
	recordSize := flag.Int("record-size", 0, "record size in bytes (without --payload-file)")
	payloadFile := flag.String("payload-file", "", "payloads, one per line, cycled")
	throughput := flag.Float64("throughput", -1, "records/s, -1 for unlimited")
	warmup := flag.Int64("warmup-records", 0, "records excluded from the results")
	asJSON := flag.Bool("json", false, "print one JSON object")
	txnID := flag.String("transactional-id", "", "produce in transactions with this transactional ID")
	txnRecords := flag.Int64("transaction-records", 0, "records per transaction with --transactional-id (default 1000)")
	flag.Var(p, "X", "producer property name=value (repeatable)")
	flag.Parse()
	if *bootstrap == "" || *topic == "" || *numRecords <= 0 || (*recordSize <= 0 && *payloadFile == "") {
		flag.Usage()
		os.Exit(64)
	}
	if *warmup >= *numRecords {
		die(64, "--warmup-records must be below --num-records")
	}
	if v, ok := p["transactional.id"]; ok && *txnID == "" {
		*txnID = v
	}
	if *txnID == "" && *txnRecords > 0 {
		die(64, "--transaction-records needs --transactional-id")
	}
	if *txnID != "" {
		if *throughput > 0 {
			die(64, "--transactional-id runs at full speed only (no --throughput)")
		}
		if *txnRecords <= 0 {
			*txnRecords = 1000
		}
	}

	var payloads [][]byte
	if *payloadFile != "" {
		data, err := os.ReadFile(*payloadFile)
		if err != nil {
			die(2, "%v", err)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) > 0 {
				payloads = append(payloads, l)
			}
		}
		if len(payloads) == 0 {
			die(2, "%s: no payloads", *payloadFile)
		}
	} else {
		pl := make([]byte, *recordSize)
		for i := range pl {
			pl[i] = byte('a' + i%26)
		}
		payloads = [][]byte{pl}
	}

	acks := p["acks"]
	if acks == "" || acks == "-1" {
		acks = "all"
	}
	idempotent := acks == "all"
	if v, ok := p["enable.idempotence"]; ok {
		idempotent = v == "true"
	}
	lingerMs := 5.0
	if v, ok := p["linger.ms"]; ok {
		lingerMs, _ = strconv.ParseFloat(v, 64)
	}
	batchSize := 16384
	if v, ok := p["batch.size"]; ok {
		batchSize, _ = strconv.Atoi(v)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.ClientID("franz-go-bench"),
		kgo.DefaultProduceTopic(*topic),
		kgo.ProducerLinger(time.Duration(lingerMs * float64(time.Millisecond))),
		kgo.ProducerBatchMaxBytes(int32(batchSize)),
	}
	var notes []string
	switch acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		die(64, "acks=%s", acks)
	}
	if *txnID != "" {
		// Transactions need the idempotent producer (franz-go's default).
		if !idempotent {
			die(64, "a transactional producer must be idempotent (enable.idempotence=false was set)")
		}
		opts = append(opts, kgo.TransactionalID(*txnID))
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
		if v, ok := p["max.in.flight.requests.per.connection"]; ok {
			n, _ := strconv.Atoi(v)
			opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(n))
		}
	}
	switch c := p["compression.type"]; c {
	case "", "none":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	default:
		die(64, "compression.type=%s", c)
	}
	for k := range p {
		switch k {
		case "acks", "enable.idempotence", "linger.ms", "batch.size", "compression.type", "max.in.flight.requests.per.connection", "transactional.id":
		default:
			notes = append(notes, k+" ignored")
		}
	}

	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die(2, "%v", err)
	}
	ctx := context.Background()
	if *txnID != "" {
		runTransactional(ctx, cl, payloads, *numRecords, *warmup, *txnRecords, *txnID, notes, *asJSON)
		return
	}

	n, w := *numRecords, *warmup
	var (
		hist      histogram // promises are called serially: no lock needed
		acked     int64
		errorsN   int64
		firstErr  error
		measuredB int64
		completed atomic.Int64
		done      = make(chan struct{})
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			errorsN++
			if firstErr == nil {
				firstErr = err
			}
		} else {
			acked++
			tr := (*timedRecord)(unsafe.Pointer(r))
			if tr.measured {
				hist.record(time.Since(tr.sent))
				measuredB += int64(len(r.Value))
			}
		}
		if completed.Add(1) == n {
			close(done)
		}
	}

	t0, cpu0 := time.Now(), cpuTime()
	start := time.Now()
	for i := int64(0); i < n; i++ {
		// Paced: record i is due at start + i/rate, is never sent before, and
		// its latency starts at its due time (bench/README.md, "Latency").
		var due time.Time
		if *throughput > 0 {
			due = start.Add(time.Duration(float64(i) / *throughput * float64(time.Second)))
			sleepUntil(due)
		}
		sent := due
		if *throughput <= 0 {
			sent = time.Now()
		}
		if i == w {
			// The measured phase starts when its first record is due (paced) or sent.
			t0 = sent
			cpu0 = cpuTime()
		}
		tr := &timedRecord{Record: kgo.Record{Value: payloads[i%int64(len(payloads))]}, sent: sent, measured: i >= w}
		cl.Produce(ctx, &tr.Record, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "franz-go-bench: flush: %v\n", err)
	}
	<-done
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	cl.Close()

	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "franz-go-bench: %d errors, first: %v\n", errorsN, firstErr)
	}
	secs := elapsed.Seconds()
	records := int64(hist.total)
	out := map[string]any{
		"client":          "franz-go",
		"version":         franzVersion(),
		"records":         records,
		"seconds":         secs,
		"records_per_sec": math.Round(float64(records)/secs*10) / 10,
		"mib_per_sec":     r3(float64(measuredB) / secs / (1024 * 1024)),
		"latency_ms": map[string]float64{
			"avg":  r3(hist.sumUs / math.Max(1, float64(hist.total)) / 1000),
			"p50":  r3(hist.quantileMs(0.50)),
			"p95":  r3(hist.quantileMs(0.95)),
			"p99":  r3(hist.quantileMs(0.99)),
			"p999": r3(hist.quantileMs(0.999)),
			"max":  r3(float64(hist.maxUs) / 1000),
		},
		"cpu_seconds":       cpu.Seconds(),
		"cpu_ns_per_record": math.Round(float64(cpu.Nanoseconds())/math.Max(1, float64(records))*10) / 10,
		"peak_rss_bytes":    peakRSS(),
		"errors":            errorsN + (n - acked - errorsN),
		"notes":             append([]string{}, notes...),
	}
	if *asJSON {
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	} else {
		fmt.Printf("franz-go: %d records in %.2f s: %.0f records/s, %.2f MiB/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, cpu %.2f s, peak RSS %.1f MiB, %d errors\n",
			records, secs, float64(records)/secs, float64(measuredB)/secs/1048576, hist.quantileMs(0.5), hist.quantileMs(0.99), hist.quantileMs(0.999), cpu.Seconds(), float64(peakRSS())/1048576, errorsN)
	}
}

// runTransactional produces n records in transactions of perTxn, as fast as it
// goes, in the pattern of franz-go's docs for a producer-only transaction: per
// transaction BeginTransaction, Produce with a promise per record (latency from
// the Produce call, as unpaced), then Flush (EndTransaction "does not flush",
// and Flush "must be called before" it) and EndTransaction(ctx, kgo.TryCommit).
// The commit latency covers Flush and EndTransaction together, like Java's
// commitTransaction and herald's commit_transaction, which flush first. A
// transaction that fails to commit is ended with TryAbort (after
// AbortBufferedRecords) and its records count as errors; a failed abort ends the
// run. The warmup is rounded up to whole transactions, so the measured phase
// starts with one; records/s count the measured records whose transaction
// committed, from the Produce of the first until the last commit returned.
func runTransactional(ctx context.Context, cl *kgo.Client, payloads [][]byte, n, w, perTxn int64, txnID string,
	notes []string, asJSON bool) {
	warmup := (w + perTxn - 1) / perTxn * perTxn
	if warmup >= n {
		die(64, "--warmup-records, rounded up to whole transactions, must be below --num-records")
	}
	var (
		hist        histogram // promises are called serially; read after Flush
		commitHist  histogram
		committed   int64
		uncommitted int64
		commits     int64
		aborts      int64
		firstErr    error
		promiseErr  error // written by the promises only; read once they all ran
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			if promiseErr == nil {
				promiseErr = err
			}
			return
		}
		tr := (*timedRecord)(unsafe.Pointer(r))
		if tr.measured {
			hist.record(time.Since(tr.sent))
		}
	}
	t0, cpu0 := time.Now(), cpuTime()
	for first := int64(0); first < n; {
		if first == warmup {
			t0, cpu0 = time.Now(), cpuTime()
		}
		last := min(first+perTxn, n)
		if err := cl.BeginTransaction(); err != nil {
			uncommitted += n - first
			if firstErr == nil {
				firstErr = err
			}
			break
		}
		for i := first; i < last; i++ {
			tr := &timedRecord{Record: kgo.Record{Value: payloads[i%int64(len(payloads))]}, sent: time.Now(), measured: i >= warmup}
			cl.Produce(ctx, &tr.Record, promise)
		}
		at := time.Now()
		err := cl.Flush(ctx)
		if err == nil {
			err = cl.EndTransaction(ctx, kgo.TryCommit)
		}
		took := time.Since(at)
		measured := first >= warmup
		if err == nil {
			if measured {
				commitHist.record(took)
				commits++
				committed += last - first
			}
		} else {
			uncommitted += last - first
			if measured {
				aborts++
			}
			if firstErr == nil {
				firstErr = err
			}
			_ = cl.AbortBufferedRecords(ctx)
			if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
				uncommitted += n - last
				break
			}
		}
		first = last
	}
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	cl.Close()

	if firstErr == nil {
		firstErr = promiseErr
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "franz-go-bench: %d records not committed, first failure: %v\n", uncommitted, firstErr)
	}
	var bytesPerRecord float64
	for _, p := range payloads {
		bytesPerRecord += float64(len(p))
	}
	bytesPerRecord /= float64(len(payloads))
	secs := elapsed.Seconds()
	latency := func(h *histogram) map[string]float64 {
		return map[string]float64{
			"avg":  r3(h.sumUs / math.Max(1, float64(h.total)) / 1000),
			"p50":  r3(h.quantileMs(0.50)),
			"p95":  r3(h.quantileMs(0.95)),
			"p99":  r3(h.quantileMs(0.99)),
			"p999": r3(h.quantileMs(0.999)),
			"max":  r3(float64(h.maxUs) / 1000),
		}
	}
	out := map[string]any{
		"client":            "franz-go",
		"version":           franzVersion(),
		"records":           committed,
		"seconds":           secs,
		"records_per_sec":   math.Round(float64(committed)/secs*10) / 10,
		"mib_per_sec":       r3(float64(committed) * bytesPerRecord / secs / (1024 * 1024)),
		"latency_ms":        latency(&hist),
		"cpu_seconds":       cpu.Seconds(),
		"cpu_ns_per_record": math.Round(float64(cpu.Nanoseconds())/math.Max(1, float64(committed))*10) / 10,
		"peak_rss_bytes":    peakRSS(),
		"errors":            uncommitted,
		"notes":             append([]string{}, notes...),
		"transactions": map[string]any{
			"transactional_id":        txnID,
			"records_per_transaction": perTxn,
			"commits":                 commits,
			"aborted":                 aborts,
			"commits_per_sec":         math.Round(float64(commits)/secs*100) / 100,
			"commit_latency_ms":       latency(&commitHist),
		},
	}
	if asJSON {
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	} else {
		fmt.Printf("franz-go: %d records committed in %.2f s: %.0f records/s, p50 %.2f ms, p99 %.2f ms, cpu %.2f s, peak RSS %.1f MiB, %d not committed; %d commits of %d records, %.1f commits/s, commit p50 %.2f ms, p99 %.2f ms\n",
			committed, secs, float64(committed)/secs, hist.quantileMs(0.5), hist.quantileMs(0.99), cpu.Seconds(),
			float64(peakRSS())/1048576, uncommitted, commits, perTxn, float64(commits)/secs,
			commitHist.quantileMs(0.5), commitHist.quantileMs(0.99))
	}
}
