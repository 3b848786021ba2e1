package dev.herald.tools;

import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * Deletes topics with the Java Admin client; topics that do not exist are fine.
 *
 * Exit codes: 0 deleted (or absent), 2 error or timeout, 64 usage.
 */
public final class DeleteTopics {
    private static final String TOOL = "DeleteTopics";
    private static final String USAGE =
            "DeleteTopics --bootstrap HOST:PORT[,...] --topic T [--topic T]... [--timeout-ms 60000]";

    private DeleteTopics() {}

    public static void main(String[] args) throws InterruptedException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "topic", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        List<String> topics = cli.all("topic");
        if (topics.isEmpty()) {
            cli.usageError("name at least one --topic");
        }
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "herald-delete-topics");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(1000, timeoutMs)));
        try (Admin admin = Admin.create(props)) {
            admin.deleteTopics(topics).all().get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                Cli.fail(TOOL, 2, "delete failed: " + e.getCause());
            }
        } catch (java.util.concurrent.TimeoutException e) {
            Cli.fail(TOOL, 2, "delete timed out after " + timeoutMs + " ms");
        }
    }
}
