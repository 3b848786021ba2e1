package dev.herald.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import java.util.Properties;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerInterceptor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.apache.kafka.tools.ProducerPerformance;

/**
 * bench/compare's Java peer: Apache Kafka's {@code KafkaProducer} with the common
 * command line of bench/compare, printing the common JSON object
 * (bench/README.md).
 *
 * <pre>
 * --bootstrap-server HOST:PORT --topic T --num-records N --record-size BYTES
 * [--payload-file F] --throughput R --warmup-records W [-X name=value]... [--json]
 * [--transactional-id ID [--transaction-records N]]
 * </pre>
 *
 * By default it runs its own send loop ({@link #ownLoop}): one {@code send} with a
 * callback per record, payload lines in order, pacing and latency as every other
 * peer (record i due at start + i/rate, never sent before, latency from the due
 * time when paced, from the send call otherwise; {@code System.nanoTime}; every
 * measured record in a microsecond histogram). CPU time is the JVM's process CPU
 * time from the send of record W until {@code flush()} returns; peak RSS is VmHWM.
 *
 * <p>With {@code --transactional-id} ({@link #transactional}) the records go in
 * transactions of {@code --transaction-records}: {@code initTransactions()} once,
 * then {@code beginTransaction()}, the sends, {@code commitTransaction()}; records/s
 * count committed records, and commits/s and the commit latency are reported too.
 *
 * <p>{@code -Dpeer.loop=perf} (JAVA_BENCH_OPTS) runs Kafka's own
 * {@code ProducerPerformance} (kafka-producer-perf-test) in this JVM instead and
 * reports its steady-state summary (whole milliseconds, sampled latencies; its
 * own pacing), for comparison with the tool people know.
 */
public final class JavaPeer {

    /** Counts sends; notes the time and CPU time when record {@code target} is sent. */
    public static final class Mark implements ProducerInterceptor<byte[], byte[]> {
        static volatile long target = 0;
        static long sent = 0; // ProducerPerformance sends from one thread
        static volatile long markNanos = -1;
        static volatile long markCpuNanos = -1;

        @Override
        public ProducerRecord<byte[], byte[]> onSend(ProducerRecord<byte[], byte[]> record) {
            if (sent++ == target) {
                markNanos = System.nanoTime();
                markCpuNanos = cpuNanos();
            }
            return record;
        }

        @Override
        public void onAcknowledgement(RecordMetadata metadata, Exception exception) {
        }

        @Override
        public void close() {
        }

        @Override
        public void configure(Map<String, ?> configs) {
        }
    }

    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    static long peakRssBytes() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmHWM:")) {
                    return Long.parseLong(l.split("\\s+")[1]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall through
        }
        return 0;
    }

    /** What the callbacks collect (they run on the producer's I/O thread; synchronised for the rare caller-thread one). */
    static final class Stats {
        final LatencyHistogram latency = new LatencyHistogram();
        long acked;
        long errors;
        long bytes;
        String firstError;

        synchronized void done(long startNanos, long nowNanos, int len, boolean measured, Exception e) {
            if (e != null) {
                errors++;
                if (firstError == null) {
                    firstError = e.toString();
                }
                return;
            }
            acked++;
            if (measured) {
                latency.recordNanos(nowNanos - startNanos);
                bytes += len;
            }
        }
    }

    /** One per record, like ProducerPerformance's callback: the start of its latency and whether it counts. */
    static final class Ack implements Callback {
        private final Stats stats;
        private final long startNanos;
        private final int len;
        private final boolean measured;

        Ack(Stats stats, long startNanos, int len, boolean measured) {
            this.stats = stats;
            this.startNanos = startNanos;
            this.len = len;
            this.measured = measured;
        }

        @Override
        public void onCompletion(RecordMetadata metadata, Exception exception) {
            stats.done(startNanos, System.nanoTime(), len, measured, exception);
        }
    }

    static byte[][] payloads(String payloadFile, int recordSize) throws IOException {
        if (payloadFile != null) {
            List<byte[]> lines = new ArrayList<>();
            for (String l : new String(Files.readAllBytes(Path.of(payloadFile)), StandardCharsets.UTF_8).split("\n")) {
                if (!l.isEmpty()) {
                    lines.add(l.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (lines.isEmpty()) {
                System.err.println("java-bench: " + payloadFile + ": no payloads");
                System.exit(2);
            }
            return lines.toArray(new byte[0][]);
        }
        byte[] p = new byte[recordSize];
        for (int i = 0; i < p.length; i++) {
            p[i] = (byte) ('a' + i % 26);
        }
        return new byte[][] {p};
    }

    /**
     * The send loop shared in spirit by every peer: record i is due at start +
     * i/rate (rate > 0) and never sent before (LockSupport.parkNanos, the OS
     * sleep, while ahead); its latency runs from its due time (paced) or from the
     * send call (unpaced) to its callback, both on System.nanoTime. A send that
     * blocks (buffer.memory full, metadata) delays the records due meanwhile and
     * they count that wait.
     */
    static void ownLoop(String bootstrap, String topic, long n, int recordSize, String payloadFile, double rate,
            long w, Map<String, String> config, boolean json) throws Exception {
        byte[][] payloads = payloads(payloadFile, recordSize);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.putAll(config);
        Stats stats = new Stats();
        long sendErrors = 0;
        String firstSendError = null;
        long t0 = 0, cpu0 = 0, end, cpuEnd;
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.partitionsFor(topic); // metadata before the clock starts
            boolean paced = rate > 0;
            double nanosPerRecord = paced ? 1e9 / rate : 0;
            long start = System.nanoTime();
            for (long i = 0; i < n; i++) {
                long due = 0;
                if (paced) {
                    due = start + (long) (i * nanosPerRecord);
                    long left;
                    while ((left = due - System.nanoTime()) > 0) {
                        LockSupport.parkNanos(left);
                    }
                }
                byte[] payload = payloads[(int) (i % payloads.length)];
                long startNanos = paced ? due : System.nanoTime();
                if (i == w) {
                    // The measured phase starts when its first record is due (paced) or sent.
                    t0 = startNanos;
                    cpu0 = cpuNanos();
                }
                try {
                    producer.send(new ProducerRecord<>(topic, payload), new Ack(stats, startNanos, payload.length, i >= w));
                } catch (RuntimeException e) {
                    sendErrors++;
                    if (firstSendError == null) {
                        firstSendError = e.toString();
                    }
                }
            }
            producer.flush();
            end = System.nanoTime();
            cpuEnd = cpuNanos();
        }
        long records, acked, errors, bytes;
        LatencyHistogram h;
        synchronized (stats) {
            records = stats.latency.count();
            acked = stats.acked;
            errors = stats.errors;
            bytes = stats.bytes;
            h = stats.latency;
            if (stats.firstError != null) {
                System.err.println("java-bench: " + errors + " delivery errors, first: " + stats.firstError);
            }
        }
        if (firstSendError != null) {
            System.err.println("java-bench: " + sendErrors + " send errors, first: " + firstSendError);
        }
        long failed = errors + sendErrors + Math.max(0, n - acked - errors - sendErrors);
        double seconds = (end - t0) / 1e9;
        double cpuSeconds = (cpuEnd - cpu0) / 1e9;
        double rps = records / seconds;
        double mibps = bytes / seconds / (1024.0 * 1024.0);
        String version = "kafka-clients " + AppInfoParser.getVersion() + " (KafkaProducer, own send loop, Java "
                + System.getProperty("java.version") + ")";
        if (json) {
            StringBuilder b = new StringBuilder();
            b.append("{\"client\":\"java\"");
            b.append(",\"version\":\"").append(version.replace("\"", "'")).append('"');
            b.append(",\"records\":").append(records);
            b.append(",\"seconds\":").append(String.format("%.6f", seconds));
            b.append(",\"records_per_sec\":").append(String.format("%.1f", rps));
            b.append(",\"mib_per_sec\":").append(String.format("%.3f", mibps));
            b.append(",\"latency_ms\":{\"avg\":").append(String.format("%.3f", h.avgMs()))
                    .append(",\"p50\":").append(String.format("%.3f", h.quantileMs(0.50)))
                    .append(",\"p95\":").append(String.format("%.3f", h.quantileMs(0.95)))
                    .append(",\"p99\":").append(String.format("%.3f", h.quantileMs(0.99)))
                    .append(",\"p999\":").append(String.format("%.3f", h.quantileMs(0.999)))
                    .append(",\"max\":").append(String.format("%.3f", h.maxMs())).append('}');
            b.append(",\"cpu_seconds\":").append(String.format("%.6f", cpuSeconds));
            b.append(",\"cpu_ns_per_record\":").append(String.format("%.1f", records > 0 ? cpuSeconds * 1e9 / records : 0));
            b.append(",\"peak_rss_bytes\":").append(peakRssBytes());
            b.append(",\"errors\":").append(failed);
            b.append(",\"notes\":[]");
            b.append('}');
            System.out.println(b);
        } else {
            System.out.printf("java: %d records in %.2f s: %.0f records/s, %.2f MiB/s, p50 %.2f ms, p99 %.2f ms, "
                            + "p99.9 %.2f ms, cpu %.2f s (%.0f ns/record), peak RSS %.1f MiB, %d errors%n",
                    records, seconds, rps, mibps, h.quantileMs(0.5), h.quantileMs(0.99), h.quantileMs(0.999),
                    cpuSeconds, records > 0 ? cpuSeconds * 1e9 / records : 0, peakRssBytes() / 1048576.0, failed);
        }
        System.out.flush();
    }

    /**
     * The send loop in transactions of {@code perTxn} records, as fast as it goes
     * (the pattern of KafkaProducer's javadoc): {@code initTransactions()} once,
     * then per transaction {@code beginTransaction()}, one {@code send} with a
     * callback per record (latency from the send call, as unpaced), and
     * {@code commitTransaction()}, which flushes the transaction's records and
     * returns once the coordinator committed. A commit that fails with a
     * {@code KafkaException} is followed by {@code abortTransaction()} and its
     * records count as errors; a fatal error (fenced, authorisation, a failed
     * abort) ends the run. The warmup is rounded up to whole transactions, so the
     * measured phase starts with one; records/s count the measured records whose
     * transaction committed, from the send of the first until the last commit
     * returned.
     */
    static void transactional(String bootstrap, String topic, long n, int recordSize, String payloadFile, long w,
            long perTxn, Map<String, String> config, boolean json) throws Exception {
        byte[][] payloads = payloads(payloadFile, recordSize);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.putAll(config);
        Stats stats = new Stats();
        LatencyHistogram commitLatency = new LatencyHistogram();
        long warmup = (w + perTxn - 1) / perTxn * perTxn;
        if (warmup >= n) {
            usage("--warmup-records, rounded up to whole transactions, must be below --num-records");
        }
        long committed = 0, uncommitted = 0, commits = 0, aborts = 0;
        String firstFailure = null;
        long t0 = 0, cpu0 = 0, end, cpuEnd;
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.partitionsFor(topic); // metadata before the clock starts
            producer.initTransactions();
            long first = 0;
            while (first < n) {
                if (first == warmup) {
                    t0 = System.nanoTime();
                    cpu0 = cpuNanos();
                }
                long last = Math.min(first + perTxn, n);
                producer.beginTransaction();
                for (long i = first; i < last; i++) {
                    byte[] payload = payloads[(int) (i % payloads.length)];
                    // A send that fails throws, or fails the callback; either way
                    // commitTransaction() then fails and the transaction is aborted.
                    try {
                        producer.send(new ProducerRecord<>(topic, payload),
                                new Ack(stats, System.nanoTime(), payload.length, i >= warmup));
                    } catch (KafkaException e) {
                        if (firstFailure == null) {
                            firstFailure = e.toString();
                        }
                    }
                }
                long at = System.nanoTime();
                boolean measured = first >= warmup;
                try {
                    producer.commitTransaction();
                    if (measured) {
                        commitLatency.recordNanos(System.nanoTime() - at);
                        commits++;
                        committed += last - first;
                    }
                } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException e) {
                    uncommitted += n - first;
                    if (firstFailure == null) {
                        firstFailure = e.toString();
                    }
                    break;
                } catch (KafkaException e) {
                    uncommitted += last - first;
                    aborts += measured ? 1 : 0;
                    if (firstFailure == null) {
                        firstFailure = e.toString();
                    }
                    producer.abortTransaction();
                }
                first = last;
            }
            end = System.nanoTime();
            cpuEnd = cpuNanos();
        }
        if (firstFailure != null) {
            System.err.println("java-bench: " + uncommitted + " records not committed, first failure: " + firstFailure);
        }
        LatencyHistogram h;
        synchronized (stats) {
            h = stats.latency;
        }
        double bytesPerRecord = 0;
        for (byte[] p : payloads) {
            bytesPerRecord += p.length;
        }
        bytesPerRecord /= payloads.length;
        double seconds = (end - t0) / 1e9;
        double cpuSeconds = (cpuEnd - cpu0) / 1e9;
        double rps = committed / seconds;
        double mibps = committed * bytesPerRecord / seconds / (1024.0 * 1024.0);
        double cps = commits / seconds;
        String version = "kafka-clients " + AppInfoParser.getVersion() + " (KafkaProducer, own send loop, Java "
                + System.getProperty("java.version") + ")";
        if (json) {
            StringBuilder b = new StringBuilder();
            b.append("{\"client\":\"java\"");
            b.append(",\"version\":\"").append(version.replace("\"", "'")).append('"');
            b.append(",\"records\":").append(committed);
            b.append(",\"seconds\":").append(String.format("%.6f", seconds));
            b.append(",\"records_per_sec\":").append(String.format("%.1f", rps));
            b.append(",\"mib_per_sec\":").append(String.format("%.3f", mibps));
            b.append(",\"latency_ms\":");
            histogramJson(b, h);
            b.append(",\"cpu_seconds\":").append(String.format("%.6f", cpuSeconds));
            b.append(",\"cpu_ns_per_record\":").append(String.format("%.1f", committed > 0 ? cpuSeconds * 1e9 / committed : 0));
            b.append(",\"peak_rss_bytes\":").append(peakRssBytes());
            b.append(",\"errors\":").append(uncommitted);
            b.append(",\"notes\":[]");
            b.append(",\"transactions\":{\"transactional_id\":\"")
                    .append(config.get("transactional.id").replace("\"", "'")).append('"');
            b.append(",\"records_per_transaction\":").append(perTxn);
            b.append(",\"commits\":").append(commits);
            b.append(",\"aborted\":").append(aborts);
            b.append(",\"commits_per_sec\":").append(String.format("%.2f", cps));
            b.append(",\"commit_latency_ms\":");
            histogramJson(b, commitLatency);
            b.append("}}");
            System.out.println(b);
        } else {
            System.out.printf("java: %d records committed in %.2f s: %.0f records/s, %.2f MiB/s, p50 %.2f ms, "
                            + "p99 %.2f ms, cpu %.2f s (%.0f ns/record), peak RSS %.1f MiB, %d not committed; "
                            + "%d commits of %d records, %.1f commits/s, commit p50 %.2f ms, p99 %.2f ms%n",
                    committed, seconds, rps, mibps, h.quantileMs(0.5), h.quantileMs(0.99), cpuSeconds,
                    committed > 0 ? cpuSeconds * 1e9 / committed : 0, peakRssBytes() / 1048576.0, uncommitted,
                    commits, perTxn, cps, commitLatency.quantileMs(0.5), commitLatency.quantileMs(0.99));
        }
        System.out.flush();
    }

    static void histogramJson(StringBuilder b, LatencyHistogram h) {
        b.append("{\"avg\":").append(String.format("%.3f", h.avgMs()))
                .append(",\"p50\":").append(String.format("%.3f", h.quantileMs(0.50)))
                .append(",\"p95\":").append(String.format("%.3f", h.quantileMs(0.95)))
                .append(",\"p99\":").append(String.format("%.3f", h.quantileMs(0.99)))
                .append(",\"p999\":").append(String.format("%.3f", h.quantileMs(0.999)))
                .append(",\"max\":").append(String.format("%.3f", h.maxMs())).append('}');
    }

    static void usage(String msg) {
        System.err.println("java-bench: " + msg);
        System.err.println("usage: java-bench --bootstrap-server HOST:PORT --topic T --num-records N "
                + "--record-size BYTES [--payload-file F] [--throughput R] [--warmup-records W] "
                + "[-X name=value]... [--json] [--transactional-id ID [--transaction-records N]]");
        System.exit(64);
    }

    // "N[ steady state] records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
    //  P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
    static final Pattern SUMMARY = Pattern.compile(
            "^(\\d+)( steady state)? records sent, ([0-9.]+) records/sec \\(([0-9.]+) MB/sec\\), "
                    + "([0-9.]+) ms avg latency, ([0-9.]+) ms max latency, (\\d+) ms 50th, (\\d+) ms 95th, "
                    + "(\\d+) ms 99th, (\\d+) ms 99.9th\\.$");

    public static void main(String[] argv) throws Exception {
        Locale.setDefault(Locale.ROOT); // ProducerPerformance formats with the default locale
        String bootstrap = null, topic = null, payloadFile = null;
        long numRecords = 0, warmup = 0;
        int recordSize = 0;
        String throughput = "-1";
        boolean json = false;
        String transactionalId = null;
        long transactionRecords = 0;
        Map<String, String> props = new LinkedHashMap<>();
        List<String> args = new ArrayList<>();
        for (String a : argv) {
            if (a.startsWith("--") && a.contains("=")) {
                args.add(a.substring(0, a.indexOf('=')));
                args.add(a.substring(a.indexOf('=') + 1));
            } else {
                args.add(a);
            }
        }
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--json")) {
                json = true;
                continue;
            }
            if (a.equals("-h") || a.equals("--help")) {
                usage("help");
            }
            if (i + 1 >= args.size()) {
                usage(a + " needs a value");
            }
            String v = args.get(++i);
            switch (a) {
                case "--bootstrap-server": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--num-records": numRecords = Long.parseLong(v); break;
                case "--record-size": recordSize = Integer.parseInt(v); break;
                case "--payload-file": payloadFile = v; break;
                case "--throughput": throughput = v; break;
                case "--warmup-records": warmup = Long.parseLong(v); break;
                case "--transactional-id": transactionalId = v; break;
                case "--transaction-records": transactionRecords = Long.parseLong(v); break;
                case "-X": {
                    int eq = v.indexOf('=');
                    if (eq < 0) usage("-X wants name=value, got " + v);
                    props.put(v.substring(0, eq).trim(), v.substring(eq + 1).trim());
                    break;
                }
                default: usage("unknown argument " + a);
            }
        }
        if (bootstrap == null || topic == null || numRecords <= 0 || (recordSize <= 0 && payloadFile == null)) {
            usage("missing arguments");
        }
        if (warmup >= numRecords) {
            usage("--warmup-records must be below --num-records");
        }

        // The common settings, with the common defaults (which are Java's own).
        Map<String, String> producer = new LinkedHashMap<>();
        String acks = props.getOrDefault("acks", "all");
        producer.put("acks", acks);
        producer.put("enable.idempotence", props.getOrDefault("enable.idempotence",
                acks.equals("all") || acks.equals("-1") ? "true" : "false"));
        producer.put("linger.ms", props.getOrDefault("linger.ms", "5"));
        producer.put("batch.size", props.getOrDefault("batch.size", "16384"));
        producer.put("compression.type", props.getOrDefault("compression.type", "none"));
        for (Map.Entry<String, String> e : props.entrySet()) {
            producer.putIfAbsent(e.getKey(), e.getValue());
        }
        producer.put("client.id", "java-bench");
        if (transactionalId != null) {
            producer.put("transactional.id", transactionalId);
        } else if (transactionRecords > 0) {
            usage("--transaction-records needs --transactional-id");
        }
        if (producer.containsKey("transactional.id")) {
            if (Double.parseDouble(throughput) > 0) {
                usage("--transactional-id runs at full speed only (no --throughput)");
            }
            transactional(bootstrap, topic, numRecords, recordSize, payloadFile, warmup,
                    transactionRecords > 0 ? transactionRecords : 1000, producer, json);
            return;
        }

        if (!"perf".equals(System.getProperty("peer.loop", "own"))) {
            ownLoop(bootstrap, topic, numRecords, recordSize, payloadFile, Double.parseDouble(throughput), warmup,
                    producer, json);
            return;
        }
        producer.put("interceptor.classes", Mark.class.getName());

        List<String> pp = new ArrayList<>(List.of(
                "--bootstrap-server", bootstrap,
                "--topic", topic,
                "--num-records", Long.toString(numRecords),
                "--throughput", throughput,
                "--warmup-records", Long.toString(warmup)));
        if (payloadFile != null) {
            pp.addAll(List.of("--payload-file", payloadFile));
        } else {
            pp.addAll(List.of("--record-size", Integer.toString(recordSize)));
        }
        pp.add("--command-property");
        for (Map.Entry<String, String> e : producer.entrySet()) {
            pp.add(e.getKey() + "=" + e.getValue());
        }

        // ProducerPerformance prints to System.out: keep a copy to parse and send
        // it to stderr, so stdout carries only our JSON.
        PrintStream realOut = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        OutputStream tee = new OutputStream() {
            @Override
            public void write(int b) {
                captured.write(b);
                System.err.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                captured.write(b, off, len);
                System.err.write(b, off, len);
            }
        };
        System.setOut(new PrintStream(tee, true, StandardCharsets.UTF_8));

        Mark.target = warmup;
        long cpuStart = cpuNanos();
        ProducerPerformance.main(pp.toArray(new String[0]));
        long endNanos = System.nanoTime();
        long endCpu = cpuNanos();
        System.out.flush();
        System.setOut(realOut);

        Matcher total = null, steady = null;
        for (String line : captured.toString(StandardCharsets.UTF_8).split("\n")) {
            Matcher m = SUMMARY.matcher(line.trim());
            if (m.matches()) {
                if (m.group(2) != null) {
                    steady = m;
                } else {
                    total = m;
                }
            }
        }
        if (total == null) {
            System.err.println("java-bench: no summary line from ProducerPerformance");
            System.exit(2);
        }
        Matcher s = warmup > 0 && steady != null ? steady : total;
        long records = Long.parseLong(s.group(1));
        double rps = Double.parseDouble(s.group(3));
        double mibps = Double.parseDouble(s.group(4));
        long errors = numRecords - Long.parseLong(total.group(1));
        long markCpu = Mark.markCpuNanos >= 0 ? Mark.markCpuNanos : cpuStart;
        double cpuSeconds = (endCpu - markCpu) / 1e9;
        double seconds = rps > 0 ? records / rps : 0;

        String version = "kafka-clients " + AppInfoParser.getVersion() + " (ProducerPerformance, Java "
                + System.getProperty("java.version") + ")";
        if (json) {
            StringBuilder b = new StringBuilder();
            b.append("{\"client\":\"java\"");
            b.append(",\"version\":\"").append(version.replace("\"", "'")).append('"');
            b.append(",\"records\":").append(records);
            b.append(",\"seconds\":").append(String.format("%.6f", seconds));
            b.append(",\"records_per_sec\":").append(String.format("%.1f", rps));
            b.append(",\"mib_per_sec\":").append(String.format("%.3f", mibps));
            b.append(",\"latency_ms\":{\"avg\":").append(s.group(5))
                    .append(",\"p50\":").append(s.group(7))
                    .append(",\"p95\":").append(s.group(8))
                    .append(",\"p99\":").append(s.group(9))
                    .append(",\"p999\":").append(s.group(10))
                    .append(",\"max\":").append(s.group(6)).append('}');
            b.append(",\"cpu_seconds\":").append(String.format("%.6f", cpuSeconds));
            b.append(",\"cpu_ns_per_record\":").append(String.format("%.1f", records > 0 ? cpuSeconds * 1e9 / records : 0));
            b.append(",\"peak_rss_bytes\":").append(peakRssBytes());
            b.append(",\"errors\":").append(errors);
            b.append(",\"notes\":[\"latency in whole ms, sampled (ProducerPerformance)\"]");
            b.append('}');
            System.out.println(b);
        } else {
            System.out.printf("java: %d records in %.2f s: %.0f records/s, %.2f MiB/s, p50 %s ms, p99 %s ms, "
                            + "p99.9 %s ms, cpu %.2f s, peak RSS %.1f MiB, %d errors%n",
                    records, seconds, rps, mibps, s.group(7), s.group(9), s.group(10), cpuSeconds,
                    peakRssBytes() / 1048576.0, errors);
        }
        System.out.flush();
        // Unused, but keeps the end-of-run time visible when debugging.
        if (System.getenv("JAVA_BENCH_DEBUG") != null) {
            System.err.printf("java-bench: measured phase cpu %.3f s, wall since mark %.3f s%n", cpuSeconds,
                    Mark.markNanos >= 0 ? (endNanos - Mark.markNanos) / 1e9 : -1.0);
        }
    }
}
