package dev.herald.tools;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.common.config.ConfigResource;

/**
 * Sets a client metrics subscription (KIP-714) with the Java Admin client, as
 * {@code kafka-client-metrics.sh --alter} does: {@code incrementalAlterConfigs}
 * on a {@code CLIENT_METRICS} resource with {@code metrics} (name prefixes),
 * {@code interval.ms} and optionally {@code match} (e.g.
 * {@code client_id=herald-.*}).
 *
 * Exit codes: 0 set, 2 error or timeout, 64 usage.
 */
public final class ClientMetrics {
    private static final String TOOL = "ClientMetrics";
    private static final String USAGE = "ClientMetrics --bootstrap HOST:PORT[,...] --name NAME --metrics PREFIX[,...]"
            + " --interval-ms MS [--match SELECTOR[,...]] [--timeout-ms 60000]";

    private ClientMetrics() {}

    public static void main(String[] args) throws InterruptedException {
        Cli cli = Cli.parse(TOOL, USAGE, args,
                Set.of("bootstrap", "name", "metrics", "interval-ms", "match", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        String name = cli.required("name");
        String metrics = cli.required("metrics");
        String interval = cli.required("interval-ms");
        String match = cli.optional("match", null);
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        List<AlterConfigOp> ops = new ArrayList<>();
        ops.add(new AlterConfigOp(new ConfigEntry("metrics", metrics), AlterConfigOp.OpType.SET));
        ops.add(new AlterConfigOp(new ConfigEntry("interval.ms", interval), AlterConfigOp.OpType.SET));
        if (match != null) {
            ops.add(new AlterConfigOp(new ConfigEntry("match", match), AlterConfigOp.OpType.SET));
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "herald-client-metrics");
        props.put(AdminClientConfig.ENABLE_METRICS_PUSH_CONFIG, "false");
        try (Admin admin = Admin.create(props)) {
            ConfigResource resource = new ConfigResource(ConfigResource.Type.CLIENT_METRICS, name);
            admin.incrementalAlterConfigs(Map.of(resource, ops)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Cli.fail(TOOL, 2, "altering the client metrics subscription failed: " + e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            Cli.fail(TOOL, 2, "timed out after " + timeoutMs + " ms");
        }
    }
}
