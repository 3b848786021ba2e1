package dev.herald.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * bench/compare's topic housekeeping, one JVM start per run:
 * {@code Topics --bootstrap B [--delete T]... [--create T --partitions P [--replication-factor R]]}.
 * Deletes the given topics (missing ones are fine), then creates the new topic
 * and waits until every partition has a leader. Prints nothing on success.
 */
public final class Topics {
    public static void main(String[] args) throws Exception {
        String bootstrap = null, create = null;
        int partitions = 6;
        short rf = 1;
        List<String> delete = new ArrayList<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--bootstrap": bootstrap = args[i + 1]; break;
                case "--delete": delete.add(args[i + 1]); break;
                case "--create": create = args[i + 1]; break;
                case "--partitions": partitions = Integer.parseInt(args[i + 1]); break;
                case "--replication-factor": rf = Short.parseShort(args[i + 1]); break;
                default:
                    System.err.println("Topics: unknown argument " + args[i]);
                    System.exit(64);
            }
        }
        if (bootstrap == null) {
            System.err.println("Topics: --bootstrap is required");
            System.exit(64);
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "bench-topics");
        try (Admin admin = Admin.create(p)) {
            if (!delete.isEmpty()) {
                try {
                    admin.deleteTopics(delete).all().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                        throw e;
                    }
                }
            }
            if (create != null) {
                long deadline = System.currentTimeMillis() + 60_000;
                while (true) {
                    try {
                        admin.createTopics(List.of(new NewTopic(create, partitions, rf))).all().get();
                        break;
                    } catch (ExecutionException e) {
                        // A topic of the same name still being deleted: retry.
                        if (System.currentTimeMillis() > deadline) {
                            throw e;
                        }
                        Thread.sleep(200);
                    }
                }
                while (true) {
                    try {
                        TopicDescription d = admin.describeTopics(Set.of(create)).allTopicNames().get().get(create);
                        boolean ready = d.partitions().size() == partitions;
                        for (TopicPartitionInfo tp : d.partitions()) {
                            ready &= tp.leader() != null && !tp.leader().isEmpty();
                        }
                        if (ready) {
                            break;
                        }
                    } catch (ExecutionException e) {
                        if (System.currentTimeMillis() > deadline) {
                            throw e;
                        }
                    }
                    if (System.currentTimeMillis() > deadline) {
                        System.err.println("Topics: " + create + " has no leaders after 60 s");
                        System.exit(2);
                    }
                    Thread.sleep(100);
                }
            }
        }
    }
}
