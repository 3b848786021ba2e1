package dev.herald.tools;

import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Prints the offsets a consumer group has committed, as the Java Admin client
 * reads them ({@code listConsumerGroupOffsets}, which shows only offsets of
 * committed transactions), one JSON object per partition, sorted by topic and
 * partition:
 *
 * <pre>
 * {"topic":"t","partition":0,"offset":42,"metadata":""}
 * </pre>
 *
 * Exit codes: 0 success (nothing printed for a group without offsets), 2 error or
 * timeout, 64 usage.
 */
public final class GroupOffsets {
    private static final String TOOL = "GroupOffsets";
    private static final String USAGE = "GroupOffsets --bootstrap HOST:PORT[,...] --group G [--timeout-ms 60000]";

    private GroupOffsets() {}

    public static void main(String[] args) throws InterruptedException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "group", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        String group = cli.required("group");
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "herald-group-offsets");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(1000, timeoutMs)));
        Map<TopicPartition, OffsetAndMetadata> offsets = null;
        try (Admin admin = Admin.create(props)) {
            offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                    .get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Cli.fail(TOOL, 2, "listing offsets failed: " + e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            Cli.fail(TOOL, 2, "timed out after " + timeoutMs + " ms");
        }
        Map<String, OffsetAndMetadata> sorted = new TreeMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
            if (e.getValue() != null) {
                sorted.put(String.format("%s\u0000%010d", e.getKey().topic(), e.getKey().partition()), e.getValue());
            }
        }
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, OffsetAndMetadata> e : sorted.entrySet()) {
            String[] parts = e.getKey().split("\u0000");
            sb.append("{\"topic\":");
            Json.string(sb, parts[0]);
            sb.append(",\"partition\":").append(Integer.parseInt(parts[1]));
            sb.append(",\"offset\":").append(e.getValue().offset());
            sb.append(",\"metadata\":");
            Json.string(sb, e.getValue().metadata());
            sb.append("}\n");
        }
        System.out.print(sb);
        System.out.flush();
    }
}
