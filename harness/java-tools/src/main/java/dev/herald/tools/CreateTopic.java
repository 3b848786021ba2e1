package dev.herald.tools;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Creates a topic with the Java Admin client and waits until every partition
 * has a leader (so producers can use it right away).
 *
 * Exit codes: 0 created (or already there with --if-not-exists), 2 error or
 * timeout, 3 topic already exists, 64 usage.
 */
public final class CreateTopic {
    private static final String TOOL = "CreateTopic";
    private static final String USAGE = "CreateTopic --bootstrap HOST:PORT[,...] --topic T --partitions P "
            + "--replication-factor R [--config k=v]... [--if-not-exists true] [--timeout-ms 60000]";

    private CreateTopic() {}

    public static void main(String[] args) throws InterruptedException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "topic", "partitions", "replication-factor",
                "config", "if-not-exists", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        String topic = cli.required("topic");
        int partitions = cli.requiredInt("partitions");
        int rf = cli.requiredInt("replication-factor");
        boolean ifNotExists = Boolean.parseBoolean(cli.optional("if-not-exists", "false"));
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        Map<String, String> configs = new HashMap<>();
        for (String kv : cli.all("config")) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                cli.usageError("--config needs k=v, got '" + kv + "'");
            }
            configs.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "herald-create-topic");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(1000, timeoutMs)));

        try (Admin admin = Admin.create(props)) {
            NewTopic nt = new NewTopic(topic, partitions, (short) rf).configs(configs);
            try {
                admin.createTopics(List.of(nt)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof TopicExistsException) {
                    if (!ifNotExists) {
                        Cli.fail(TOOL, 3, "topic '" + topic + "' already exists");
                    }
                } else {
                    Cli.fail(TOOL, 2, "create failed: " + e.getCause());
                }
            } catch (java.util.concurrent.TimeoutException e) {
                Cli.fail(TOOL, 2, "create timed out after " + timeoutMs + " ms");
            }

            String last = "no description yet";
            while (System.nanoTime() < deadline) {
                try {
                    TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                            .get(5, TimeUnit.SECONDS).get(topic);
                    int withLeader = 0;
                    for (TopicPartitionInfo p : d.partitions()) {
                        if (p.leader() != null && !p.leader().isEmpty()) {
                            withLeader++;
                        }
                    }
                    if (d.partitions().size() >= partitions && withLeader == d.partitions().size()) {
                        System.out.println("created " + topic + " partitions=" + d.partitions().size()
                                + " replication-factor=" + rf);
                        System.exit(0);
                    }
                    last = withLeader + "/" + d.partitions().size() + " partitions have a leader";
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    last = String.valueOf(e instanceof ExecutionException ? e.getCause() : e);
                }
                Thread.sleep(100);
            }
            Cli.fail(TOOL, 2, "topic '" + topic + "' not ready after " + timeoutMs + " ms: " + last);
        }
    }
}
