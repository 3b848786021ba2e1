package dev.herald.tools;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.common.Node;

/**
 * Waits until the cluster at --bootstrap reports (Admin.describeCluster) at
 * least N brokers and a controller; with --node ID (repeatable) also requires
 * those broker ids to be among them. Prints one summary line on stdout.
 *
 * Exit codes: 0 ready, 2 not ready before the timeout, 64 usage.
 */
public final class WaitReady {
    private static final String TOOL = "WaitReady";
    private static final String USAGE =
            "WaitReady --bootstrap HOST:PORT[,...] --brokers N [--node ID]... [--timeout-ms 60000]";

    private WaitReady() {}

    public static void main(String[] args) {
        // Connection-refused warnings are expected while brokers start; keep stderr for our own message.
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka", "error");
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "brokers", "node", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        int brokers = cli.requiredInt("brokers");
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        Set<Integer> wanted = new TreeSet<>();
        for (String n : cli.all("node")) {
            try {
                wanted.add(Integer.parseInt(n));
            } catch (NumberFormatException e) {
                cli.usageError("--node needs an integer, got '" + n + "'");
            }
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "herald-wait-ready");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        props.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");

        String last = "no answer from the cluster";
        try (Admin admin = Admin.create(props)) {
            while (true) {
                long leftMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (leftMs <= 0) {
                    break;
                }
                int callMs = (int) Math.max(200, Math.min(5000, leftMs));
                try {
                    DescribeClusterResult r = admin.describeCluster(new DescribeClusterOptions().timeoutMs(callMs));
                    Collection<Node> nodes = r.nodes().get(callMs, TimeUnit.MILLISECONDS);
                    Node controller = r.controller().get(callMs, TimeUnit.MILLISECONDS);
                    Set<Integer> ids = new TreeSet<>();
                    for (Node n : nodes) {
                        ids.add(n.id());
                    }
                    boolean haveController = controller != null && !controller.isEmpty();
                    if (ids.size() >= brokers && haveController && ids.containsAll(wanted)) {
                        System.out.println("ready: brokers " + ids + ", controller " + controller.id()
                                + ", cluster " + r.clusterId().get(callMs, TimeUnit.MILLISECONDS));
                        System.out.flush();
                        System.exit(0);
                    }
                    last = "brokers " + ids + (haveController ? ", controller " + controller.id() : ", no controller");
                } catch (ExecutionException e) {
                    last = String.valueOf(e.getCause());
                } catch (java.util.concurrent.TimeoutException e) {
                    last = "describeCluster timed out";
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
                VerifyConsumer.sleep(250);
            }
        }
        List<String> want = new ArrayList<>();
        want.add(brokers + " brokers");
        if (!wanted.isEmpty()) {
            want.add("node ids " + wanted);
        }
        Cli.fail(TOOL, 2, "cluster at " + bootstrap + " not ready after " + timeoutMs + " ms (wanted "
                + String.join(", ", want) + " and a controller); last seen: " + last);
    }
}
