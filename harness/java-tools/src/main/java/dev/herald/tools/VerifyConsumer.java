package dev.herald.tools;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads every record of a topic, from the beginning of each partition up to the
 * end offsets seen at start, with the real Java {@link KafkaConsumer} (no
 * consumer group, read_uncommitted), and prints one JSON object per record on
 * stdout, sorted by (partition, offset):
 *
 * <pre>
 * {"partition":0,"offset":5,"timestamp":1700000000000,"timestamp_type":"CreateTime",
 *  "key":"&lt;base64&gt;"|null,"value":"&lt;base64&gt;"|null,
 *  "headers":[{"key":"k","value":"&lt;base64&gt;"|null},...]}
 * </pre>
 *
 * {@code --property NAME=VALUE} (repeatable) adds any consumer property, e.g. the
 * {@code security.protocol}, {@code sasl.*} and {@code ssl.*} settings of a secured
 * listener.
 *
 * Exit codes: 0 success, 2 timeout / topic missing / client error, 64 usage.
 */
public final class VerifyConsumer {
    private static final String TOOL = "VerifyConsumer";
    private static final String USAGE =
            "VerifyConsumer --bootstrap HOST:PORT[,HOST:PORT...] --topic TOPIC [--timeout-ms 60000]"
                    + " [--property NAME=VALUE]...";

    private VerifyConsumer() {}

    public static void main(String[] args) throws IOException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "topic", "timeout-ms", "property"));
        String bootstrap = cli.required("bootstrap");
        String topic = cli.required("topic");
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        long deadline = System.nanoTime() + Duration.ofMillis(timeoutMs).toNanos();

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "herald-verify-consumer");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        props.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        // Extra consumer properties (security.protocol, sasl.*, ssl.*, ...), applied last.
        for (String p : cli.all("property")) {
            int eq = p.indexOf('=');
            if (eq <= 0) {
                cli.usageError("--property needs NAME=VALUE, got '" + p + "'");
            }
            props.put(p.substring(0, eq), p.substring(eq + 1));
        }

        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = partitionsOf(consumer, topic, deadline);
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(partitions, remaining(deadline)));

            while (true) {
                List<TopicPartition> behind = new ArrayList<>();
                for (TopicPartition tp : partitions) {
                    if (consumer.position(tp, remaining(deadline)) < end.get(tp)) {
                        behind.add(tp);
                    }
                }
                if (behind.isEmpty()) {
                    break;
                }
                if (System.nanoTime() >= deadline) {
                    StringBuilder sb = new StringBuilder("timed out after " + timeoutMs + " ms; behind:");
                    for (TopicPartition tp : behind) {
                        sb.append(' ').append(tp.partition()).append(" (position ")
                                .append(consumer.position(tp, Duration.ofSeconds(5))).append(" < end ")
                                .append(end.get(tp)).append(')');
                    }
                    Cli.fail(TOOL, 2, sb.toString());
                }
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(
                        Math.max(1, Math.min(500, remaining(deadline).toMillis()))));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    // Records past the snapshot end offset were written after we started.
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
                        records.add(r);
                    }
                }
            }
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            Cli.fail(TOOL, 2, "timed out after " + timeoutMs + " ms: " + e.getMessage());
        } catch (org.apache.kafka.common.KafkaException e) {
            Cli.fail(TOOL, 2, "Kafka error: " + e);
        }

        records.sort(Comparator.<ConsumerRecord<byte[], byte[]>>comparingInt(ConsumerRecord::partition)
                .thenComparingLong(ConsumerRecord::offset));
        BufferedWriter out = new BufferedWriter(
                new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
        StringBuilder sb = new StringBuilder(256);
        for (ConsumerRecord<byte[], byte[]> r : records) {
            sb.setLength(0);
            sb.append("{\"partition\":").append(r.partition());
            sb.append(",\"offset\":").append(r.offset());
            sb.append(",\"timestamp\":").append(r.timestamp());
            sb.append(",\"timestamp_type\":");
            Json.string(sb, timestampType(r.timestampType()));
            sb.append(",\"key\":");
            Json.base64OrNull(sb, r.key());
            sb.append(",\"value\":");
            Json.base64OrNull(sb, r.value());
            sb.append(",\"headers\":[");
            boolean first = true;
            for (Header h : r.headers()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                sb.append("{\"key\":");
                Json.string(sb, h.key());
                sb.append(",\"value\":");
                Json.base64OrNull(sb, h.value());
                sb.append('}');
            }
            sb.append("]}\n");
            out.append(sb);
        }
        out.flush();
        System.exit(0);
    }

    private static List<TopicPartition> partitionsOf(
            KafkaConsumer<byte[], byte[]> consumer, String topic, long deadline) {
        while (true) {
            List<PartitionInfo> infos;
            try {
                infos = consumer.partitionsFor(topic, remaining(deadline));
            } catch (org.apache.kafka.common.errors.TimeoutException e) {
                infos = null;
            }
            if (infos != null && !infos.isEmpty()) {
                List<TopicPartition> tps = new ArrayList<>();
                for (PartitionInfo pi : infos) {
                    tps.add(new TopicPartition(topic, pi.partition()));
                }
                tps.sort(Comparator.comparingInt(TopicPartition::partition));
                return tps;
            }
            if (System.nanoTime() >= deadline) {
                Cli.fail(TOOL, 2, "topic '" + topic + "' not found (no partitions) before the timeout");
            }
            sleep(200);
        }
    }

    static String timestampType(TimestampType t) {
        switch (t) {
            case CREATE_TIME: return "CreateTime";
            case LOG_APPEND_TIME: return "LogAppendTime";
            default: return "NoTimestampType";
        }
    }

    static Duration remaining(long deadlineNanos) {
        return Duration.ofNanos(Math.max(0, deadlineNanos - System.nanoTime()));
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
